"""AlertDispatcher over small fakes: a ticket store in memory and a coordinators' chat that the gateway
posts into. Tests assert on what the store records and what the chat shows, never on call lists."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import CaseStatus, Priority, Report
from bot.domain.records import CaseView, OutboxItem, OutboxKind
from bot.services.alerts import (
    MAX_BACKOFF_SECONDS,
    MIGRATED_CHAT_KEY,
    AlertDispatcher,
    ChatMoved,
    GiveUp,
    RoundResult,
    TopicGone,
    TryAgain,
    backoff,
)

CHAT = -1001000000001
NEW_CHAT = -1001000000002
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Wall clock and monotonic clock, moved together by hand."""

    def __init__(self) -> None:
        self.now = START
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


# --- the store ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One outbox row and what delivery recorded about it."""

    id: int
    case_id: str
    kind: OutboxKind
    priority: Priority
    created_at: datetime
    attempts: int = 0
    next_attempt: datetime | None = None
    sent: bool = False
    dead: bool = False
    error: str | None = None

    def item(self) -> OutboxItem:
        return OutboxItem(
            id=self.id,
            case_id=self.case_id,
            kind=self.kind,
            priority=self.priority,
            created_at=self.created_at,
            attempts=self.attempts,
            sent_at=None,
        )


@dataclass(frozen=True)
class Ticket:
    chat_id: int
    thread_id: int | None
    card_message_id: int | None


class FakeTicketStore:
    """The TicketStore protocol in memory. `fail_mark_sent` simulates a crash right after a send."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.tickets: dict[str, Ticket] = {}
        self.values: dict[str, str] = {}
        self.fail_mark_sent = 0

    def add(self, case_id: str, priority: Priority, kind: OutboxKind = OutboxKind.NEW_CASE) -> int:
        row_id = len(self.rows) + 1
        self.rows[row_id] = Row(row_id, case_id, kind, priority, START)
        return row_id

    async def due(self, limit: int, now: datetime) -> list[OutboxItem]:
        live = [
            r
            for r in self.rows.values()
            if not r.sent and not r.dead and (r.next_attempt is None or r.next_attempt <= now)
        ]
        live.sort(key=lambda r: (r.priority, r.id))
        return [r.item() for r in live[:limit]]

    async def mark_sent(self, outbox_id: int) -> None:
        if self.fail_mark_sent:
            self.fail_mark_sent -= 1
            raise RuntimeError("the process died before recording the send")
        self.rows[outbox_id].sent = True

    async def retry_later(self, outbox_id: int, error: str, at: datetime) -> None:
        row = self.rows[outbox_id]
        row.attempts += 1
        row.next_attempt = at
        row.error = error

    async def postpone(self, outbox_id: int, at: datetime) -> None:
        self.rows[outbox_id].next_attempt = at

    async def dead_letter(self, outbox_id: int, error: str) -> None:
        row = self.rows[outbox_id]
        row.attempts += 1
        row.dead = True
        row.error = error

    async def ticket(self, case_id: str) -> Ticket | None:
        return self.tickets.get(case_id)

    async def save_topic(self, case_id: str, chat_id: int, thread_id: int | None) -> None:
        self.tickets[case_id] = Ticket(chat_id, thread_id, None)

    async def save_card(self, case_id: str, message_id: int) -> None:
        old = self.tickets[case_id]
        self.tickets[case_id] = Ticket(old.chat_id, old.thread_id, message_id)

    async def forget_ticket(self, case_id: str) -> None:
        self.tickets.pop(case_id, None)

    async def get_value(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_value(self, key: str, value: str) -> None:
        self.values[key] = value

    async def delete_values(self, keys) -> None:
        for key in keys:
            self.values.pop(key, None)


# --- the coordinators' chat --------------------------------------------------------------------------


@dataclass
class Message:
    thread_id: int | None
    case_id: str
    kind: str  # "card" or the OutboxKind of a notice
    shown: CaseView | None = None  # what a card shows now
    edits: int = 0
    flagged: bool = False  # shown as a possible duplicate


@dataclass
class Chat:
    forum: bool = True
    topics: dict[int, str] = field(default_factory=dict)  # thread id -> case id
    messages: dict[int, Message] = field(default_factory=dict)
    moved_to: int | None = None


class FakeGateway:
    """A small Telegram: chats with topics and messages. `fail(method, error)` makes the next call fail."""

    def __init__(self, *chat_ids: int) -> None:
        self.chats = {chat_id: Chat() for chat_id in chat_ids}
        self.operator_alerts: list[str] = []
        self.renamed: list[tuple[str, Priority]] = []
        self.failures: dict[str, list[Exception]] = {}
        self._ids = iter(range(1, 10_000))

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([error] * times)

    def _enter(self, method: str, chat_id: int) -> Chat:
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)
        chat = self.chats[chat_id]
        if chat.moved_to is not None:
            raise ChatMoved(chat.moved_to)
        return chat

    def _thread(self, chat: Chat, thread_id: int | None) -> None:
        if thread_id is not None and thread_id not in chat.topics:
            raise TopicGone("message thread not found")

    async def open_topic(self, chat_id: int, case: CaseView) -> int | None:
        chat = self._enter("open_topic", chat_id)
        if not chat.forum:
            return None
        thread_id = next(self._ids)
        chat.topics[thread_id] = case.case_id
        return thread_id

    async def post_card(
        self, chat_id: int, thread_id: int | None, case: CaseView, *, possible_duplicate: bool = False
    ) -> int:
        chat = self._enter("post_card", chat_id)
        self._thread(chat, thread_id)
        message_id = next(self._ids)
        chat.messages[message_id] = Message(thread_id, case.case_id, "card", case, flagged=possible_duplicate)
        return message_id

    async def update_card(
        self, chat_id: int, message_id: int, case: CaseView, *, possible_duplicate: bool = False
    ) -> None:
        chat = self._enter("update_card", chat_id)
        message = chat.messages.get(message_id)
        if message is None:
            raise TopicGone("message to edit not found")
        message.shown = case
        message.flagged = possible_duplicate
        message.edits += 1

    async def post_notice(
        self,
        chat_id: int,
        thread_id: int | None,
        case: CaseView,
        kind: OutboxKind,
        *,
        possible_duplicate: bool = False,
    ) -> None:
        chat = self._enter("post_notice", chat_id)
        self._thread(chat, thread_id)
        chat.messages[next(self._ids)] = Message(
            thread_id, case.case_id, kind.value, flagged=possible_duplicate
        )

    async def rename_topic(self, chat_id: int, thread_id: int, case: CaseView) -> None:
        chat = self._enter("rename_topic", chat_id)
        self._thread(chat, thread_id)
        self.renamed.append((case.case_id, case.priority))

    async def alert_operators(self, text_code: str, case_id: str) -> None:
        queued = self.failures.get("alert_operators")
        if queued:
            raise queued.pop(0)
        self.operator_alerts.append(case_id)

    # What the coordinators see.

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        self.chats[chat_id].moved_to = new_chat_id
        self.chats[new_chat_id] = Chat()

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        chat = self.chats[chat_id]
        del chat.topics[thread_id]
        chat.messages = {i: m for i, m in chat.messages.items() if m.thread_id != thread_id}

    def cards(self, chat_id: int = CHAT) -> list[str]:
        """Case ids of the cards in the chat, in the order they were posted."""
        return [m.case_id for m in self.chats[chat_id].messages.values() if m.kind == "card"]

    def topics_of(self, case_id: str, chat_id: int = CHAT) -> list[int]:
        return [t for t, c in self.chats[chat_id].topics.items() if c == case_id]

    def in_thread(self, chat_id: int, thread_id: int | None) -> list[Message]:
        return [m for m in self.chats[chat_id].messages.values() if m.thread_id == thread_id]


# --- the fixture -------------------------------------------------------------------------------------


def case_view(case_id: str, priority: Priority = Priority.P3, **changes: object) -> CaseView:
    fields: dict[str, object] = {
        "case_id": case_id,
        "created_at": START,
        "status": CaseStatus.NEW,
        "priority": priority,
        "reasons": (),
        "report": Report(),
        "withdrawn": False,
        "quarantined": False,
        "linked_case_ids": (),
        "additions": (),
        "media_count": 0,
        "contact_chat_id": None,
    }
    fields.update(changes)
    return CaseView.model_validate(fields)


@dataclass
class World:
    """A dispatcher with its store, gateway, clock and the cases it can load."""

    store: FakeTicketStore
    gateway: FakeGateway
    clock: Clock
    cases: dict[str, CaseView]
    dispatcher: AlertDispatcher

    def commit(
        self, case_id: str, priority: Priority, kind: OutboxKind = OutboxKind.NEW_CASE, **changes: object
    ) -> int:
        """Write (or change) a case and its outbox row, as CaseStore does in one transaction."""
        self.cases[case_id] = case_view(case_id, priority, **changes)
        return self.store.add(case_id, priority, kind)

    def restart(self) -> AlertDispatcher:
        """A new dispatcher over the same store and chat, as after a crash."""
        self.dispatcher = make_dispatcher(self.store, self.gateway, self.clock, self.cases)
        return self.dispatcher

    async def drain(self) -> None:
        while await self.dispatcher.run_round() != RoundResult():
            pass


def make_dispatcher(
    store: FakeTicketStore,
    gateway: FakeGateway,
    clock: Clock,
    cases: dict[str, CaseView],
    per_minute: int = 1000,
    default_chat_id: int = CHAT,
) -> AlertDispatcher:
    async def load_case(case_id: str) -> CaseView | None:
        return cases.get(case_id)

    return AlertDispatcher(
        store,
        gateway,
        load_case,
        default_chat_id,
        clock=clock.wall,
        rng=random.Random(4),
        per_minute=per_minute,
        monotonic=clock.monotonic,
    )


@pytest.fixture
def world() -> World:
    store, gateway, clock = FakeTicketStore(), FakeGateway(CHAT), Clock()
    cases: dict[str, CaseView] = {}
    return World(store, gateway, clock, cases, make_dispatcher(store, gateway, clock, cases))


# --- order -------------------------------------------------------------------------------------------


async def test_p1_is_delivered_before_older_p3_and_p4(world: World) -> None:
    """A P1 committed after a P3 and a P4 reaches the group first; then the P3, then the P4."""
    world.commit("P3-OLD", Priority.P3)
    world.commit("P4-OLD", Priority.P4)
    world.commit("P1-NEW", Priority.P1)

    result = await world.dispatcher.run_round()

    assert result == RoundResult(sent=3)
    assert world.gateway.cards() == ["P1-NEW", "P3-OLD", "P4-OLD"]
    assert all(row.sent for row in world.store.rows.values())


async def test_a_p1_committed_between_rounds_goes_next(world: World) -> None:
    """With P4s waiting, a P1 committed between two rounds is the next alert delivered."""
    for n in range(3):
        world.commit(f"P4-{n}", Priority.P4)
    assert await world.dispatcher.run_round(limit=1) == RoundResult(sent=1)

    world.commit("P1", Priority.P1)
    await world.dispatcher.run_round(limit=1)

    assert world.gateway.cards() == ["P4-0", "P1"]
    await world.drain()
    assert world.gateway.cards() == ["P4-0", "P1", "P4-1", "P4-2"]


# --- pacing ------------------------------------------------------------------------------------------


async def test_the_eleventh_alert_in_a_minute_waits_for_the_group_budget(world: World) -> None:
    """At 20 messages a minute (2 per alert), ten alerts go at once; the eleventh waits for the minute."""
    world.dispatcher = make_dispatcher(world.store, world.gateway, world.clock, world.cases, per_minute=20)
    for n in range(11):
        world.commit(f"C-{n:02}", Priority.P3)

    first = await world.dispatcher.run_round()

    assert first.sent == 10
    assert 0 < first.paused_for <= 60
    assert world.gateway.cards() == [f"C-{n:02}" for n in range(10)]
    assert not world.store.rows[11].sent

    world.clock.advance(30)
    waiting = await world.dispatcher.run_round()
    assert waiting.sent == 0
    assert waiting.paused_for > 0
    assert not world.store.rows[11].sent

    world.clock.advance(30)
    assert await world.dispatcher.run_round() == RoundResult(sent=1)
    assert world.gateway.cards()[-1] == "C-10"


async def test_re_alerts_and_alerts_share_the_group_budget(world: World) -> None:
    """Messages sent outside the dispatcher (P1 re-alerts) take slots from the same 20 a minute: with the
    minute spent on alerts no slot is left, and slots spent elsewhere hold alerts back."""
    world.dispatcher = make_dispatcher(world.store, world.gateway, world.clock, world.cases, per_minute=20)
    for n in range(10):
        world.commit(f"C-{n:02}", Priority.P3)
    assert (await world.dispatcher.run_round()).sent == 10
    assert not world.dispatcher.take_slot()

    world.clock.advance(61)
    assert all(world.dispatcher.take_slot() for _ in range(19))
    world.commit("C-10", Priority.P3)
    held = await world.dispatcher.run_round()
    assert held.sent == 0
    assert held.paused_for > 0
    assert world.dispatcher.take_slot()
    assert not world.dispatcher.take_slot()


# --- failures ----------------------------------------------------------------------------------------


async def test_a_transient_failure_is_counted_held_back_and_delivered_later(world: World) -> None:
    """A timeout counts an attempt and holds the alert until its backoff; then it is delivered once."""
    row_id = world.commit("SLOW", Priority.P2)
    world.gateway.fail("open_topic", TryAgain("TimedOut"))

    assert await world.dispatcher.run_round() == RoundResult(retried=1)
    row = world.store.rows[row_id]
    assert row.attempts == 1
    assert row.next_attempt is not None
    assert row.next_attempt > world.clock.now
    assert row.error == "TimedOut"
    assert not row.sent

    assert await world.dispatcher.run_round() == RoundResult(), "not due while backing off"

    world.clock.advance((row.next_attempt - world.clock.now).total_seconds())
    assert await world.dispatcher.run_round() == RoundResult(sent=1)
    assert world.store.rows[row_id].sent
    assert world.gateway.cards() == ["SLOW"]
    assert len(world.gateway.topics_of("SLOW")) == 1


async def test_a_429_pauses_the_whole_group_without_an_attempt_and_stops_the_round(world: World) -> None:
    """Rate limited (429): every alert waits retry_after, no attempt is counted, and nothing else is sent."""
    p1 = world.commit("URGENT", Priority.P1)
    p3 = world.commit("LATER", Priority.P3)
    world.gateway.fail("open_topic", TryAgain("rate limited", retry_after=7))

    result = await world.dispatcher.run_round()

    assert result.paused_for == 7
    assert result.sent == 0
    assert world.store.rows[p1].attempts == 0
    assert world.store.rows[p1].next_attempt is None, "it keeps its place: the pause is the group's"
    assert (await world.dispatcher.run_round()).paused_for > 0, "still paused: nothing goes ahead of it"
    assert not world.dispatcher.take_slot(), "nor a re-alert"
    assert not world.store.rows[p3].sent
    assert world.gateway.chats[CHAT].messages == {}
    assert world.gateway.chats[CHAT].topics == {}

    world.clock.advance(7)
    await world.drain()
    assert world.gateway.cards() == ["URGENT", "LATER"]


async def test_after_a_429_the_group_waits_and_the_p1_keeps_its_place(world: World) -> None:
    """While a P1 waits out a 429's retry_after, no other alert is sent to the group ahead of it."""
    world.commit("URGENT", Priority.P1)
    world.commit("LATER", Priority.P3)
    world.gateway.fail("open_topic", TryAgain("rate limited", retry_after=30))
    await world.dispatcher.run_round()

    world.clock.advance(2)  # the next tick of the delivery job
    await world.dispatcher.run_round()
    assert world.gateway.cards() == [], "the group is still rate limited"

    world.clock.advance(30)
    await world.drain()
    assert world.gateway.cards() == ["URGENT", "LATER"]


async def test_a_permanent_failure_is_dead_lettered_once_and_operators_are_alerted(world: World) -> None:
    """Forbidden (bot removed): the alert is dead-lettered, operators are told once, it is never retried."""
    row_id = world.commit("KICKED", Priority.P1)
    world.gateway.fail("open_topic", GiveUp("Forbidden: bot was kicked from the supergroup chat"))

    assert await world.dispatcher.run_round() == RoundResult(dead=1)
    row = world.store.rows[row_id]
    assert row.dead
    assert row.attempts == 1
    assert row.error is not None
    assert "kicked" in row.error
    assert world.gateway.operator_alerts == ["KICKED"]

    world.clock.advance(MAX_BACKOFF_SECONDS * 10)
    assert await world.dispatcher.run_round() == RoundResult()
    assert world.gateway.operator_alerts == ["KICKED"]
    assert world.gateway.chats[CHAT].topics == {}


async def test_an_operator_alert_that_fails_does_not_stop_delivery(world: World) -> None:
    """If the operators cannot be reached either, the dead letter stays and the next alert still goes."""
    world.commit("KICKED", Priority.P1)
    world.commit("NEXT", Priority.P2)
    world.gateway.fail("post_card", GiveUp("Bad Request: message is too long"))
    world.gateway.fail("alert_operators", GiveUp("Forbidden: bot can't initiate conversation"))

    assert await world.dispatcher.run_round() == RoundResult(sent=1, dead=1)
    assert world.store.rows[1].dead
    assert world.gateway.cards() == ["NEXT"]


async def test_a_case_that_no_longer_exists_is_dead_lettered(world: World) -> None:
    """An outbox row whose case is gone is dead-lettered with an operator alert; nothing is posted."""
    row_id = world.store.add("PURGED", Priority.P2)

    assert await world.dispatcher.run_round() == RoundResult(dead=1)
    assert world.store.rows[row_id].dead
    assert world.gateway.operator_alerts == ["PURGED"]
    assert world.gateway.chats[CHAT].messages == {}


# --- the chat moves, the topic goes ------------------------------------------------------------------


async def test_a_migrated_group_is_followed_and_the_ticket_reopened_there(world: World) -> None:
    """After the group migrates, the new chat id is remembered and the case's ticket is reopened there."""
    world.commit("MOVING", Priority.P2)
    await world.drain()
    world.gateway.migrate(CHAT, NEW_CHAT)

    world.commit("MOVING", Priority.P2, OutboxKind.CASE_UPDATE, additions=("more",))
    world.commit("AFTER", Priority.P3)
    await world.drain()

    assert world.store.values[f"{MIGRATED_CHAT_KEY}:{CHAT}"] == str(NEW_CHAT)
    assert await world.dispatcher.chat_id() == NEW_CHAT
    assert world.store.tickets["MOVING"].chat_id == NEW_CHAT
    assert world.gateway.cards(NEW_CHAT) == ["MOVING", "AFTER"]
    (thread,) = world.gateway.topics_of("MOVING", NEW_CHAT)
    assert [m.kind for m in world.gateway.in_thread(NEW_CHAT, thread)] == ["card", "case_update"]
    assert all(row.sent for row in world.store.rows.values())


async def test_a_restarted_dispatcher_keeps_delivering_to_the_migrated_group(world: World) -> None:
    """The migrated chat id survives a restart: the next alert goes straight to the new chat."""
    world.gateway.migrate(CHAT, NEW_CHAT)
    world.commit("FIRST", Priority.P2)
    await world.drain()
    world.gateway.chats[CHAT].moved_to = None  # the old id would now answer: it must not be used

    world.restart()
    world.commit("SECOND", Priority.P2)
    await world.drain()

    assert world.gateway.cards(NEW_CHAT) == ["FIRST", "SECOND"]
    assert world.gateway.cards(CHAT) == []


async def test_a_newly_configured_group_wins_over_a_migration_of_the_old_one(world: World) -> None:
    """When operators configure a different group, a migration remembered for the old group is ignored."""
    world.gateway.migrate(CHAT, NEW_CHAT)
    world.commit("BEFORE", Priority.P2)
    await world.drain()
    replacement = -1001000000099
    world.gateway.chats[replacement] = Chat()

    world.dispatcher = make_dispatcher(
        world.store, world.gateway, world.clock, world.cases, default_chat_id=replacement
    )
    world.commit("AFTER", Priority.P2)
    await world.drain()

    assert world.gateway.cards(replacement) == ["AFTER"]


async def test_a_deleted_topic_is_reopened_and_the_card_reposted(world: World) -> None:
    """An update to a case whose topic was deleted opens a new topic with a fresh card and the notice."""
    world.commit("ORPHAN", Priority.P2)
    await world.drain()
    (old_thread,) = world.gateway.topics_of("ORPHAN")
    world.gateway.delete_topic(CHAT, old_thread)

    world.commit("ORPHAN", Priority.P2, OutboxKind.CASE_UPDATE, additions=("moved to the river",))
    await world.drain()

    (new_thread,) = world.gateway.topics_of("ORPHAN")
    assert new_thread != old_thread
    assert world.store.tickets["ORPHAN"].thread_id == new_thread
    shown = world.gateway.in_thread(CHAT, new_thread)
    assert [m.kind for m in shown] == ["card", "case_update"]
    assert shown[0].shown is not None
    assert shown[0].shown.additions == ("moved to the river",)
    assert all(row.sent for row in world.store.rows.values())


async def test_a_card_posted_into_a_vanished_topic_is_reposted_in_a_new_one(world: World) -> None:
    """If the topic disappears between opening it and posting the card, a new topic gets the card."""
    world.commit("RACE", Priority.P2)
    world.gateway.fail("post_card", TopicGone("message thread not found"))

    assert await world.dispatcher.run_round() == RoundResult(sent=1)
    assert world.gateway.cards() == ["RACE"]
    ticket = world.store.tickets["RACE"]
    assert ticket.card_message_id is not None
    assert world.gateway.chats[CHAT].messages[ticket.card_message_id].thread_id == ticket.thread_id


# --- crashes -----------------------------------------------------------------------------------------


async def test_a_crash_after_opening_the_topic_reuses_it(world: World) -> None:
    """If the process dies after the topic was opened, the next run posts the card in that same topic."""
    world.commit("CRASH", Priority.P1)
    world.gateway.fail("post_card", RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        await world.dispatcher.run_round()

    world.restart()
    assert await world.dispatcher.run_round() == RoundResult(sent=1)

    (thread,) = world.gateway.topics_of("CRASH")
    assert [m.kind for m in world.gateway.in_thread(CHAT, thread)] == ["card"]
    assert world.store.rows[1].sent


async def test_a_crash_after_posting_the_card_edits_it_rather_than_posting_another(world: World) -> None:
    """If the process dies after the card was posted but before it was marked sent, no second card appears."""
    world.commit("CRASH", Priority.P1)
    world.store.fail_mark_sent = 1
    with pytest.raises(RuntimeError):
        await world.dispatcher.run_round()

    world.restart()
    await world.drain()

    assert world.gateway.cards() == ["CRASH"]
    assert len(world.gateway.topics_of("CRASH")) == 1
    assert world.store.rows[1].sent


# --- updates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        (OutboxKind.CASE_UPDATE, {"additions": ("they were moved",)}),
        (OutboxKind.WITHDRAWN, {"withdrawn": True}),
    ],
)
async def test_a_change_edits_the_card_in_place_and_posts_a_notice(
    world: World, kind: OutboxKind, changes: dict[str, object]
) -> None:
    """An update or withdrawal edits the existing card and posts one notice in the same topic."""
    world.commit("CHANGED", Priority.P2)
    await world.drain()
    card_id = world.store.tickets["CHANGED"].card_message_id

    world.commit("CHANGED", Priority.P2, kind, **changes)
    await world.drain()

    (thread,) = world.gateway.topics_of("CHANGED")
    shown = world.gateway.in_thread(CHAT, thread)
    assert [m.kind for m in shown] == ["card", kind.value]
    card = world.gateway.chats[CHAT].messages[card_id]  # type: ignore[index]
    assert card.edits == 1
    assert card.shown == world.cases["CHANGED"]
    assert world.store.tickets["CHANGED"].card_message_id == card_id


async def test_a_non_forum_group_gets_the_cards_in_the_chat_itself(world: World) -> None:
    """In a group that is not a forum, the card and notices are posted in the chat, without a topic."""
    world.gateway.chats[CHAT].forum = False
    world.commit("PLAIN", Priority.P2)
    world.commit("PLAIN", Priority.P2, OutboxKind.CASE_UPDATE, additions=("x",))
    await world.drain()

    assert world.store.tickets["PLAIN"].thread_id is None
    assert [m.kind for m in world.gateway.in_thread(CHAT, None)] == ["card", "case_update"]


# --- backoff -----------------------------------------------------------------------------------------


@given(attempts=st.integers(min_value=0, max_value=1000), seed=st.integers(0, 2**32))
def test_backoff_stays_positive_and_within_the_maximum(attempts: int, seed: int) -> None:
    """Whatever the attempt count and jitter, the backoff is at least a second and at most the maximum."""
    assert 1.0 <= backoff(attempts, random.Random(seed)) <= MAX_BACKOFF_SECONDS


@given(attempts=st.integers(min_value=0, max_value=6), seeds=st.tuples(st.integers(), st.integers()))
def test_backoff_never_shrinks_from_one_attempt_to_the_next_below_the_cap(
    attempts: int, seeds: tuple[int, int]
) -> None:
    """Below the cap, the next attempt always waits at least as long as this one, whatever the jitter."""
    this = backoff(attempts, random.Random(seeds[0]))
    following = backoff(attempts + 1, random.Random(seeds[1]))
    assert following >= this


@given(attempts=st.integers(min_value=8, max_value=1000), seed=st.integers(0, 2**32))
def test_backoff_stays_near_the_cap_once_reached(attempts: int, seed: int) -> None:
    """Once the cap is reached the backoff stays in its upper half: a long outage is never hammered."""
    assert backoff(attempts, random.Random(seed)) >= MAX_BACKOFF_SECONDS / 2


async def test_an_alert_failing_for_days_is_still_rescheduled_and_the_others_go(world: World) -> None:
    """An alert with a thousand failed attempts that fails again is held back; the next alert still goes."""
    stubborn = world.commit("STUBBORN", Priority.P1)
    world.store.rows[stubborn].attempts = 1023
    world.commit("NEXT", Priority.P2)
    world.gateway.fail("open_topic", TryAgain("Bad Gateway"))

    assert await world.dispatcher.run_round() == RoundResult(sent=1, retried=1)
    assert world.gateway.cards() == ["NEXT"]


@given(attempts=st.integers(min_value=1023, max_value=10**6), seed=st.integers(0, 2**32))
def test_backoff_is_capped_for_any_number_of_attempts(attempts: int, seed: int) -> None:
    """However many attempts failed, the backoff is still at most the maximum."""
    assert backoff(attempts, random.Random(seed)) <= MAX_BACKOFF_SECONDS
