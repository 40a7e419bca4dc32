"""Delivering the outbox to the coordinators: at least once across crashes, in the normal case exactly once,
most urgent first, patient with Telegram's limits, and loud about what can never be delivered.

Each committed case or change left an outbox row in the same transaction. The dispatcher takes due rows
by priority, opens the case's topic if it has none, posts or edits its ticket card, and marks the row sent.
The gateway (a Protocol; the Telegram adapter lives in handlers/) reports failures as the exceptions below,
so this module knows nothing of Telegram.

A send whose outcome cannot be known (the process was killed, or the request timed out, after it left)
is remembered before it is made: the step in flight is recorded first and forgotten once its result is
stored. Found still recorded at the next attempt, the step is made again and what it posts is flagged
as a possible duplicate, so that a second topic or card never passes for a second case.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.domain.models import Priority
from bot.domain.records import CaseView, OutboxItem, OutboxKind

_LOG = logging.getLogger(__name__)

MIGRATED_CHAT_KEY = "coordinator_chat_id"
# bot_state keys: the non-idempotent send in flight for a case ("<step>:<outbox id>"), and the cases
# whose ticket was (re)posted after such a send, so that every later edit of the card keeps the flag.
IN_FLIGHT_KEY = "alert_in_flight"
POSSIBLE_DUPLICATE_KEY = "alert_possible_duplicate"
BATCH = 20
MAX_BACKOFF_SECONDS = 300.0
# Telegram allows about 20 messages a minute into one group, all its topics together.
GROUP_MESSAGES_PER_MINUTE = 20
# A new ticket costs two messages (the topic's opening and the card); an update costs two (edit, notice).
MESSAGES_PER_ALERT = 2
# At least this many lower-priority (P3, P4) new cases waiting make a burst: they are announced together
# in one digest at once, and their topics and cards follow as the rate limit allows.
BURST_THRESHOLD = 6
DIGEST_MAX_CASES = 30


class DeliveryError(Exception):
    """A delivery attempt failed; subclasses say what to do about it."""


class TryAgain(DeliveryError):
    """A transient failure (timeout, connection, 5xx, 429): retry later, after `retry_after` if given.

    `outcome_unknown`: the request may have been carried out (it timed out or the connection broke after
    it left), so the retry is flagged as a possible duplicate.
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, outcome_unknown: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class GiveUp(DeliveryError):
    """A permanent failure (bad request, bot removed from the group): dead-letter and alert an operator."""


class ChatMoved(DeliveryError):
    """The group became a supergroup with a new id: deliver there from now on."""

    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"chat migrated to {new_chat_id}")
        self.new_chat_id = new_chat_id


class TopicGone(DeliveryError):
    """The case's topic was deleted: open a new one."""


class AlertGateway(Protocol):
    """Posts tickets in the coordinators' chat (implemented over the Telegram Bot API in handlers/)."""

    async def open_topic(self, chat_id: int, case: CaseView) -> int | None:
        """Open the case's forum topic; return its thread id, or None when the chat is not a forum."""
        ...

    async def post_card(
        self, chat_id: int, thread_id: int | None, case: CaseView, *, possible_duplicate: bool = False
    ) -> int:
        """Post the ticket card (flagged as a possible duplicate if asked); return its message id."""
        ...

    async def update_card(
        self, chat_id: int, message_id: int, case: CaseView, *, possible_duplicate: bool = False
    ) -> None:
        """Edit the ticket card in place to show the case as it is now (keeping a duplicate flag)."""
        ...

    async def post_notice(
        self,
        chat_id: int,
        thread_id: int | None,
        case: CaseView,
        kind: OutboxKind,
        *,
        possible_duplicate: bool = False,
    ) -> None:
        """Post a short notice in the case's topic: information added, or withdrawn by the reporter."""
        ...

    async def rename_topic(self, chat_id: int, thread_id: int, case: CaseView) -> None:
        """Keep the topic's name (priority, case id, area) in step with the case."""
        ...

    async def alert_operators(self, text_code: str, case_id: str) -> None:
        """Tell the operators (admins) that an alert could not be delivered."""
        ...

    async def post_digest(self, chat_id: int, cases: Sequence[CaseView]) -> None:
        """Announce several lower-priority cases in one message (their own tickets follow)."""
        ...


class TicketStore(Protocol):
    """What delivery needs from storage (implemented by storage.coordination.CoordinationStore)."""

    async def due(self, limit: int, now: datetime) -> list[OutboxItem]: ...

    async def mark_sent(self, outbox_id: int) -> None: ...

    async def retry_later(self, outbox_id: int, error: str, at: datetime) -> None: ...

    async def dead_letter(self, outbox_id: int, error: str) -> None: ...

    async def ticket(self, case_id: str) -> TicketLike | None: ...

    async def save_topic(self, case_id: str, chat_id: int, thread_id: int | None) -> None: ...

    async def save_card(self, case_id: str, message_id: int) -> None: ...

    async def forget_ticket(self, case_id: str) -> None: ...

    async def get_value(self, key: str) -> str | None: ...

    async def set_value(self, key: str, value: str) -> None: ...

    async def delete_values(self, keys: Sequence[str]) -> None: ...


@runtime_checkable
class BurstStore(Protocol):
    """Optional: the digest bookkeeping (storage.coordination.CoordinationStore has it)."""

    async def unannounced(self, lowest: int, limit: int) -> list[tuple[int, str]]: ...

    async def mark_announced(self, outbox_ids: list[int]) -> None: ...


class TicketLike(Protocol):
    @property
    def chat_id(self) -> int: ...

    @property
    def thread_id(self) -> int | None: ...

    @property
    def card_message_id(self) -> int | None: ...


@dataclass(frozen=True)
class RoundResult:
    """What one delivery round did (for logs, tests and benchmarks)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    paused_for: float = 0.0


def backoff(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8 ... seconds, at most MAX_BACKOFF_SECONDS."""
    ceiling = min(MAX_BACKOFF_SECONDS, 2.0 ** min(max(1, attempts + 1), 20))
    return rng.uniform(ceiling / 2, ceiling)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlertDispatcher:
    """Delivers due outbox rows, most urgent first. One round at a time (callers serialise rounds)."""

    def __init__(
        self,
        store: TicketStore,
        gateway: AlertGateway,
        load_case: Callable[[str], Awaitable[CaseView | None]],
        default_chat_id: int,
        *,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        per_minute: int = GROUP_MESSAGES_PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
        route: Callable[[CaseView], int] | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.load_case = load_case
        self.default_chat_id = default_chat_id
        # Which configured group a case belongs to (routing rules); by default, the one group.
        self.route = route or (lambda _case: default_chat_id)
        self.clock = clock
        # Retry jitter, not a secret: a plain pseudo-random generator is right here.
        self.rng = rng or random.Random()  # nosec B311
        self.per_minute = per_minute
        self.monotonic = monotonic
        self._recent: deque[float] = deque()
        self._paused_until = 0.0  # Telegram asked the whole group to wait (429) until then

    def take_slot(self, messages: int = 1) -> bool:
        """Spend the group's budget on ``messages`` other messages now (a P1 re-alert), if it has room.

        False while the group's minute is full or Telegram asked it to wait: the caller tries again on its
        next run. Alerts and these messages share one budget, so together they stay within the limit.
        """
        if self._paused_until > self.monotonic() or self._wait_for_budget(messages):
            return False
        self._spent(messages)
        return True

    def _wait_for_budget(self, messages: int = MESSAGES_PER_ALERT) -> float:
        """Seconds until the group can take another alert without exceeding its per-minute limit.

        The dispatcher paces itself rather than letting a rate limiter sleep inside a call: while it
        waits, a newly committed P1 can still take the next free slot ahead of everything older.
        """
        now = self.monotonic()
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
        if len(self._recent) + messages <= self.per_minute:
            return 0.0
        oldest_needed = self._recent[len(self._recent) + messages - self.per_minute - 1]
        return max(0.01, oldest_needed + 60.0 - now)

    def _spent(self, messages: int = MESSAGES_PER_ALERT) -> None:
        now = self.monotonic()
        self._recent.extend([now] * messages)

    @staticmethod
    def _migration_key(configured: int) -> str:
        # Keyed by the configured chat: an operator who configures another group starts afresh.
        return f"{MIGRATED_CHAT_KEY}:{configured}"

    async def resolve(self, configured: int) -> int:
        """A configured chat, or where Telegram said it migrated to."""
        moved = await self.store.get_value(self._migration_key(configured))
        return int(moved) if moved else configured

    async def chat_id(self, case: CaseView | None = None) -> int:
        """The coordinators' chat for `case` (routing rules), or the default one; migrations followed."""
        return await self.resolve(self.default_chat_id if case is None else self.route(case))

    async def run_round(self, limit: int = BATCH) -> RoundResult:
        """Deliver up to `limit` due items. Stops early when the group is rate limited (429)."""
        sent = retried = dead = 0
        held = self._paused_until - self.monotonic()
        if held > 0:
            return RoundResult(paused_for=held)
        due = await self.store.due(limit, self.clock())
        # A digest never takes a slot an urgent case is waiting for: only when no P1/P2 is due.
        urgent = any(item.priority <= Priority.P2 for item in due)
        if isinstance(self.store, BurstStore) and not urgent and not self._wait_for_budget():
            await self._fold_burst(self.store)
        for item in due:
            pause = self._wait_for_budget()
            if pause:
                return RoundResult(sent, retried, dead, pause)
            self._spent()
            try:
                await self._deliver(item)
            except TryAgain as error:
                retried += 1
                if error.retry_after is not None:
                    # The limit is the group's, shared by every topic: everything waits, the item keeps
                    # its place (no attempt counted), and the most urgent goes first when it lifts.
                    self._paused_until = self.monotonic() + error.retry_after
                    _LOG.warning("Coordinators' chat rate limited for %.0f s", error.retry_after)
                    return RoundResult(sent, retried, dead, error.retry_after)
                delay = backoff(item.attempts, self.rng)
                await self.store.retry_later(item.id, str(error), self.clock() + timedelta(seconds=delay))
                _LOG.warning(
                    "Alert %s for case %s failed (%s); retry in %.0f s", item.id, item.case_id, error, delay
                )
            except GiveUp as error:
                dead += 1
                await self.store.dead_letter(item.id, str(error))
                _LOG.error("Alert %s for case %s dead-lettered: %s", item.id, item.case_id, error)
                try:
                    await self.gateway.alert_operators("dead_letter", item.case_id)
                except DeliveryError as alert_error:
                    _LOG.error("Operators could not be alerted either: %s", type(alert_error).__name__)
            else:
                sent += 1
        return RoundResult(sent, retried, dead)

    async def _fold_burst(self, store: BurstStore) -> None:
        """In a burst, announce the waiting lower-priority cases in one digest (per group) right away."""
        waiting = await store.unannounced(Priority.P3.value, DIGEST_MAX_CASES)
        if len(waiting) < BURST_THRESHOLD:
            return
        by_chat: dict[int, list[CaseView]] = {}
        for _outbox_id, case_id in waiting:
            case = await self.load_case(case_id)
            if case is not None:
                by_chat.setdefault(await self.chat_id(case), []).append(case)
        try:
            for chat_id, cases in by_chat.items():
                self._spent(1)  # a digest is one message
                await self.gateway.post_digest(chat_id, cases)
        except DeliveryError as error:
            _LOG.warning("Burst digest not posted (%s); the tickets still follow one by one", error)
            return
        await store.mark_announced([outbox_id for outbox_id, _case in waiting])
        _LOG.info("Burst: %d lower-priority cases announced in a digest", len(waiting))

    async def _deliver(self, item: OutboxItem) -> None:
        case = await self.load_case(item.case_id)
        if case is None:
            raise GiveUp(f"case {item.case_id} no longer exists")
        try:
            for _attempt in range(3):  # a moved chat or a deleted topic is followed, then tried again
                try:
                    await self._deliver_to(item, case)
                    break
                except ChatMoved as moved:
                    _LOG.warning("Coordinators' chat migrated; following it")
                    await self._landed(item.case_id)  # refused: nothing was posted
                    await self.store.set_value(self._migration_key(self.route(case)), str(moved.new_chat_id))
                    await self.store.forget_ticket(item.case_id)
                except TopicGone:
                    _LOG.warning("Topic of case %s is gone; opening a new one", item.case_id)
                    await self._landed(item.case_id)
                    await self.store.forget_ticket(item.case_id)
            else:
                raise TryAgain("the chat or topic kept changing")
        except TryAgain as error:
            if not error.outcome_unknown:
                await self._landed(item.case_id)  # answered with an error: nothing was posted
            raise
        except GiveUp:
            await self._landed(item.case_id)
            raise
        if await self.store.get_value(f"{IN_FLIGHT_KEY}:{item.case_id}"):
            # Killed after a send's result was stored but before its mark was cleared: this attempt found
            # the result (a saved card) and did not send again; the mark must not flag a later send.
            await self._landed(item.case_id)
        await self.store.mark_sent(item.id)

    # --- sends whose outcome may be unknowable ---------------------------------------------------------

    async def _in_flight(self, case_id: str, step: str, outbox_id: int) -> bool:
        """Record that `step` is about to be sent for the case; tell whether the same step was already in
        flight when the last attempt ended without a result (killed, or timed out): a possible duplicate.

        A topic or a card is the case's own whatever the outbox row; a notice belongs to its row.
        """
        key = f"{IN_FLIGHT_KEY}:{case_id}"
        before = await self.store.get_value(key)
        mark = step if step in ("topic", "card") else f"{step}:{outbox_id}"
        if before != mark:
            await self.store.set_value(key, mark)
        return before == mark

    async def _landed(self, case_id: str) -> None:
        """The step in flight has a known outcome (its result is stored, or it was refused)."""
        key = f"{IN_FLIGHT_KEY}:{case_id}"
        if await self.store.get_value(key):
            await self.store.delete_values([key])

    async def _flagged(self, case_id: str) -> bool:
        return bool(await self.store.get_value(f"{POSSIBLE_DUPLICATE_KEY}:{case_id}"))

    async def _flag(self, case_id: str) -> None:
        _LOG.warning(
            "Case %s: a send was interrupted; its ticket is flagged as a possible duplicate", case_id
        )
        await self.store.set_value(f"{POSSIBLE_DUPLICATE_KEY}:{case_id}", "1")

    async def _deliver_to(self, item: OutboxItem, case: CaseView) -> None:
        chat_id = await self.chat_id(case)
        ticket = await self.store.ticket(item.case_id)
        if ticket is not None and ticket.chat_id != chat_id:
            ticket = None  # the group moved: the old topic is unreachable
        if ticket is None:
            if await self._in_flight(item.case_id, "topic", item.id):
                await self._flag(item.case_id)  # a topic may have been opened already
            thread_id = await self.gateway.open_topic(chat_id, case)
            # Saved at once: a crash after this reuses the topic instead of opening a second one.
            # The marker stays: the card's, set next, replaces it (one write fewer per new case).
            await self.store.save_topic(item.case_id, chat_id, thread_id)
            card = None
        else:
            thread_id, card = ticket.thread_id, ticket.card_message_id
        if card is None:
            if await self._in_flight(item.case_id, "card", item.id):
                await self._flag(item.case_id)  # a card may have been posted already
            message_id = await self.gateway.post_card(
                chat_id, thread_id, case, possible_duplicate=await self._flagged(item.case_id)
            )
            await self.store.save_card(item.case_id, message_id)
            await self._landed(item.case_id)
            if item.kind is OutboxKind.NEW_CASE:
                return
        else:
            await self.gateway.update_card(
                chat_id, card, case, possible_duplicate=await self._flagged(item.case_id)
            )
            if thread_id is not None:
                await self.gateway.rename_topic(chat_id, thread_id, case)
        if item.kind in (OutboxKind.CASE_UPDATE, OutboxKind.WITHDRAWN):
            again = await self._in_flight(item.case_id, "notice", item.id)
            await self.gateway.post_notice(chat_id, thread_id, case, item.kind, possible_duplicate=again)
            await self._landed(item.case_id)
