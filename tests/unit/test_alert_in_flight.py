"""Sends whose outcome cannot be known: the dispatcher records each non-idempotent send before making it,
and a send found still recorded at the next attempt is made again flagged as a possible duplicate.
Over the small fakes of test_alerts (a ticket store in memory, a chat with topics and messages)."""

from __future__ import annotations

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.domain.models import Priority
from bot.domain.records import CaseView, OutboxKind
from bot.services.alerts import IN_FLIGHT_KEY, POSSIBLE_DUPLICATE_KEY, GiveUp, RoundResult, TryAgain
from handlers.coordinators.gateway import call
from tests.unit.test_alerts import CHAT, Clock, FakeGateway, FakeTicketStore, World, make_dispatcher


class Killed(Exception):
    """The process died (in a test: the dispatcher's round is cut short here)."""


class DyingGateway(FakeGateway):
    """A FakeGateway whose next call of a method is carried out, and then its answer is lost."""

    def __init__(self, *chat_ids: int) -> None:
        super().__init__(*chat_ids)
        self.die_after: set[str] = set()

    def _died(self, method: str) -> None:
        if method in self.die_after:
            self.die_after.discard(method)
            raise Killed(method)

    async def open_topic(self, chat_id: int, case: CaseView) -> int | None:
        thread = await super().open_topic(chat_id, case)
        self._died("open_topic")
        return thread

    async def post_card(
        self, chat_id: int, thread_id: int | None, case: CaseView, *, possible_duplicate: bool = False
    ) -> int:
        message = await super().post_card(chat_id, thread_id, case, possible_duplicate=possible_duplicate)
        self._died("post_card")
        return message

    async def post_notice(
        self,
        chat_id: int,
        thread_id: int | None,
        case: CaseView,
        kind: OutboxKind,
        *,
        possible_duplicate: bool = False,
    ) -> None:
        await super().post_notice(chat_id, thread_id, case, kind, possible_duplicate=possible_duplicate)
        self._died("post_notice")


@pytest.fixture
def world() -> World:
    store, gateway, clock = FakeTicketStore(), DyingGateway(CHAT), Clock()
    cases: dict[str, CaseView] = {}
    return World(store, gateway, clock, cases, make_dispatcher(store, gateway, clock, cases))


def gateway(world: World) -> DyingGateway:
    assert isinstance(world.gateway, DyingGateway)
    return world.gateway


def cards(world: World, case_id: str) -> list[bool]:
    """Whether each card of the case is flagged, oldest first."""
    messages = world.gateway.chats[CHAT].messages.values()
    return [m.flagged for m in messages if m.kind == "card" and m.case_id == case_id]


async def crash(world: World) -> None:
    with pytest.raises(Killed):
        await world.dispatcher.run_round()
    world.restart()


async def test_a_topic_opened_but_not_recorded_is_reopened_and_its_card_flagged(world: World) -> None:
    """Killed after Telegram opened the topic, before it was saved: the next run opens another topic and
    posts the card there flagged, and remembers the flag for the case."""
    world.commit("LOST-TOPIC", Priority.P1)
    gateway(world).die_after.add("open_topic")
    await crash(world)

    assert await world.dispatcher.run_round() == RoundResult(sent=1)
    assert len(world.gateway.topics_of("LOST-TOPIC")) == 2
    assert cards(world, "LOST-TOPIC") == [True]
    assert world.store.values[f"{POSSIBLE_DUPLICATE_KEY}:LOST-TOPIC"]
    assert not world.store.values.get(f"{IN_FLIGHT_KEY}:LOST-TOPIC")


async def test_a_card_posted_but_not_recorded_is_posted_again_flagged(world: World) -> None:
    """Killed after the card was posted, before its id was saved: a second card, flagged, same topic."""
    world.commit("LOST-CARD", Priority.P2)
    gateway(world).die_after.add("post_card")
    await crash(world)

    assert await world.dispatcher.run_round() == RoundResult(sent=1)
    assert len(world.gateway.topics_of("LOST-CARD")) == 1
    assert cards(world, "LOST-CARD") == [False, True]


async def test_the_flag_survives_later_edits_of_the_card(world: World) -> None:
    """Once flagged, the card keeps the flag when a change of the case edits it."""
    world.commit("EDITED", Priority.P2)
    gateway(world).die_after.add("post_card")
    await crash(world)
    await world.drain()

    world.commit("EDITED", Priority.P1, OutboxKind.CASE_UPDATE, additions=("more",))
    await world.drain()
    ticket = world.store.tickets["EDITED"]
    assert ticket.card_message_id is not None
    edited = world.gateway.chats[CHAT].messages[ticket.card_message_id]
    assert edited.edits == 1
    assert edited.flagged


class DyingStore(FakeTicketStore):
    """A FakeTicketStore whose process dies right after it saved a card's message id."""

    die_after_save_card = False

    async def save_card(self, case_id: str, message_id: int) -> None:
        await super().save_card(case_id, message_id)
        if self.die_after_save_card:
            self.die_after_save_card = False
            raise Killed("save_card")


async def test_a_card_recorded_just_before_a_kill_is_neither_reposted_nor_left_in_flight() -> None:
    """Killed after the card's id was saved, before its send was marked done: the next run edits that
    card (no second one, no flag) and clears the mark, so that it cannot flag a later send."""
    store, chat, clock = DyingStore(), DyingGateway(CHAT), Clock()
    cases: dict[str, CaseView] = {}
    world = World(store, chat, clock, cases, make_dispatcher(store, chat, clock, cases))
    world.commit("SAVED", Priority.P2)
    store.die_after_save_card = True
    await crash(world)

    await world.drain()
    assert cards(world, "SAVED") == [False]
    assert not store.values.get(f"{IN_FLIGHT_KEY}:SAVED")


async def test_a_notice_posted_but_not_recorded_is_posted_again_flagged(world: World) -> None:
    """Killed after a notice was posted, before its row was marked sent: it is posted again, flagged."""
    world.commit("NOTICE", Priority.P3)
    await world.drain()
    world.commit("NOTICE", Priority.P3, OutboxKind.CASE_UPDATE, additions=("more",))
    gateway(world).die_after.add("post_notice")
    await crash(world)

    await world.drain()
    (thread,) = world.gateway.topics_of("NOTICE")
    notices = [m.flagged for m in world.gateway.in_thread(CHAT, thread) if m.kind == "case_update"]
    assert notices == [False, True]
    assert cards(world, "NOTICE") == [False], "the card itself was never in doubt"


async def test_a_clean_delivery_leaves_nothing_in_flight_and_flags_nothing(world: World) -> None:
    """The normal case: one topic, one card, no flag, and no send left recorded as in flight."""
    world.commit("CLEAN", Priority.P1)
    world.commit("CLEAN", Priority.P1, OutboxKind.WITHDRAWN, withdrawn=True)
    await world.drain()
    assert cards(world, "CLEAN") == [False]
    assert not any(world.store.values.values())


async def test_a_refused_send_is_retried_without_a_flag(world: World) -> None:
    """Telegram answered with an error (nothing was posted): the retry is not a possible duplicate."""
    world.commit("REFUSED", Priority.P2)
    world.gateway.fail("post_card", TryAgain("Bad Gateway"))
    assert await world.dispatcher.run_round() == RoundResult(retried=1)
    world.clock.advance(600)
    await world.drain()
    assert cards(world, "REFUSED") == [False]


async def test_a_timed_out_send_is_retried_flagged(world: World) -> None:
    """A timeout leaves the outcome unknown: the retried card is flagged."""
    world.commit("TIMEOUT", Priority.P2)
    world.gateway.fail("post_card", TryAgain("TimedOut", outcome_unknown=True))
    assert await world.dispatcher.run_round() == RoundResult(retried=1)
    world.clock.advance(600)
    await world.drain()
    assert cards(world, "TIMEOUT") == [True]


async def test_a_dead_letter_clears_the_send_in_flight(world: World) -> None:
    """A permanent refusal is an answer: nothing stays recorded in flight for the case."""
    world.commit("DEAD", Priority.P2)
    world.gateway.fail("post_card", GiveUp("Bad Request: message is too long"))
    assert await world.dispatcher.run_round() == RoundResult(dead=1)
    assert not world.store.values.get(f"{IN_FLIGHT_KEY}:DEAD")


async def _raise(error: Exception) -> None:
    raise error


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (TimedOut(), True),
        (NetworkError("httpx.ReadError: connection closed"), True),
        (NetworkError("httpx.ConnectError: connection refused"), False),
        (TimedOut("Pool timeout: ... Request was *not* sent to Telegram."), False),
        (NetworkError("Bad Gateway"), False),
    ],
)
async def test_the_gateway_tells_a_lost_answer_from_an_error_answer(error: Exception, unknown: bool) -> None:
    """Timeouts and connections broken mid-request leave the outcome unknown; error statuses do not."""
    with pytest.raises(TryAgain) as raised:
        await call(_raise(error))
    assert raised.value.outcome_unknown is unknown


async def test_the_gateway_turns_a_429_and_a_400_into_known_outcomes() -> None:
    """Rate limits and bad requests are answers: nothing was carried out."""
    with pytest.raises(TryAgain) as limited:
        await call(_raise(RetryAfter(3)))
    assert not limited.value.outcome_unknown
    with pytest.raises(GiveUp):
        await call(_raise(BadRequest("Bad Request: chat not found")))
