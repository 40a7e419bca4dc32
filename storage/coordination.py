"""The coordinators' side of storage: tickets (topic and card per case), delivery state of the outbox,
and run-time facts such as a migrated group id.

The outbox rows themselves are written by `CaseStore` in the transaction of the change behind them; this
store only records what happened to each delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from bot.domain.records import OutboxItem
from storage.cases import CaseStore, OutboxItemNotFound
from storage.db import transaction
from storage.timestamps import from_db_time, to_db_time, utc_now

__all__ = ["CoordinationStore", "Ticket"]

# Longest error text kept with an outbox row: enough for Telegram's description, never report content.
MAX_ERROR = 300


@dataclass(frozen=True)
class Ticket:
    """Where a case's ticket lives in a coordinators' chat."""

    case_id: str
    chat_id: int
    thread_id: int | None
    card_message_id: int | None


class CoordinationStore:
    """Tickets and delivery bookkeeping over one aiosqlite connection."""

    def __init__(
        self, conn: aiosqlite.Connection, cases: CaseStore, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._conn = conn
        self.cases = cases
        self._clock = clock

    # --- outbox ----------------------------------------------------------------------------------------

    async def due(self, limit: int, now: datetime) -> list[OutboxItem]:
        """Unsent, live outbox items due by `now`, most urgent first, then oldest."""
        return await self.cases.pending_outbox(limit, now=now)

    async def backlog(self) -> int:
        """How many alerts wait (due or backing off), dead letters excluded."""
        rows = await self._conn.execute_fetchall(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
        )
        return int(next(iter(rows))[0])

    async def unannounced(self, lowest: int, limit: int) -> list[tuple[int, str]]:
        """(outbox id, case id) of due-or-waiting new-case alerts of priority `lowest` or lower (P3, P4)
        not yet announced in a digest, oldest first."""
        rows = await self._conn.execute_fetchall(
            "SELECT id, case_id FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL "
            "AND announced_at IS NULL AND kind = 'new_case' AND priority >= ? ORDER BY id LIMIT ?",
            (lowest, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def mark_announced(self, outbox_ids: list[int]) -> None:
        async with transaction(self._conn):
            await self._conn.executemany(
                "UPDATE outbox SET announced_at = ? WHERE id = ?",
                [(to_db_time(self._clock()), outbox_id) for outbox_id in outbox_ids],
            )

    async def mark_sent(self, outbox_id: int) -> None:
        await self.cases.mark_sent(outbox_id)

    async def retry_later(self, outbox_id: int, error: str, at: datetime) -> None:
        """Count a failed attempt and hold the item until `at`. Raises OutboxItemNotFound."""
        await self._update(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (to_db_time(at), error[:MAX_ERROR], outbox_id),
        )

    async def postpone(self, outbox_id: int, at: datetime) -> None:
        """Hold an item until `at` without counting an attempt (the group as a whole is rate limited)."""
        await self._update("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (to_db_time(at), outbox_id))

    async def dead_letter(self, outbox_id: int, error: str) -> None:
        """Give up on an item that can never be delivered as it is. Raises OutboxItemNotFound."""
        await self._update(
            "UPDATE outbox SET attempts = attempts + 1, dead_at = ?, last_error = ? WHERE id = ?",
            (to_db_time(self._clock()), error[:MAX_ERROR], outbox_id),
        )

    async def dead_letters(self) -> list[tuple[int, str, str]]:
        """(outbox id, case id, last error) of every dead-lettered item, oldest first."""
        rows = await self._conn.execute_fetchall(
            "SELECT id, case_id, COALESCE(last_error, '') FROM outbox WHERE dead_at IS NOT NULL ORDER BY id"
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        async with transaction(self._conn), self._conn.execute(sql, params) as cursor:
            if cursor.rowcount == 0:
                raise OutboxItemNotFound(f"no outbox item {params[-1]}")

    # --- tickets ---------------------------------------------------------------------------------------

    async def ticket(self, case_id: str) -> Ticket | None:
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT chat_id, thread_id, card_message_id FROM case_tickets WHERE case_id = ?", (case_id,)
            )
        )
        if not rows:
            return None
        chat_id, thread_id, card = rows[0]
        return Ticket(case_id, int(chat_id), thread_id, card)

    async def save_topic(self, case_id: str, chat_id: int, thread_id: int | None) -> None:
        """Record the topic opened for a case (a new topic forgets the old card)."""
        async with transaction(self._conn):
            await self._conn.execute(
                "INSERT INTO case_tickets (case_id, chat_id, thread_id, card_message_id, created_at) "
                "VALUES (?, ?, ?, NULL, ?) ON CONFLICT (case_id) DO UPDATE SET "
                "chat_id = excluded.chat_id, thread_id = excluded.thread_id, card_message_id = NULL",
                (case_id, chat_id, thread_id, to_db_time(self._clock())),
            )

    async def save_card(self, case_id: str, message_id: int) -> None:
        async with transaction(self._conn):
            await self._conn.execute(
                "UPDATE case_tickets SET card_message_id = ? WHERE case_id = ?", (message_id, case_id)
            )

    async def case_for_message(self, chat_id: int, thread_id: int | None, card_message_id: int) -> str | None:
        """The case whose ticket card is `card_message_id` in that chat (and topic), if any."""
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT case_id FROM case_tickets WHERE chat_id = ? AND card_message_id = ? "
                "AND (thread_id IS ? OR thread_id = ?)",
                (chat_id, card_message_id, thread_id, thread_id),
            )
        )
        return str(rows[0][0]) if rows else None

    async def forget_ticket(self, case_id: str) -> None:
        """Forget a ticket whose topic or chat is gone, so that the next delivery makes a new one."""
        async with transaction(self._conn):
            await self._conn.execute("DELETE FROM case_tickets WHERE case_id = ?", (case_id,))

    # --- run-time facts --------------------------------------------------------------------------------

    async def get_value(self, key: str) -> str | None:
        rows = list(await self._conn.execute_fetchall("SELECT value FROM bot_state WHERE key = ?", (key,)))
        return str(rows[0][0]) if rows else None

    async def values_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every run-time fact whose key starts with ``prefix``, by key."""
        rows = await self._conn.execute_fetchall(
            "SELECT key, value FROM bot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        )
        return {str(key): str(value) for key, value in rows}

    async def set_value(self, key: str, value: str) -> None:
        async with transaction(self._conn):
            await self._conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, to_db_time(self._clock())),
            )

    async def delete_values(self, keys: Sequence[str]) -> None:
        """Forget these run-time facts (keys that do not exist are ignored)."""
        async with transaction(self._conn):
            await self._conn.executemany("DELETE FROM bot_state WHERE key = ?", [(key,) for key in keys])

    async def last_attempt_error(self, outbox_id: int) -> tuple[int, datetime | None, str | None]:
        """(attempts, next attempt time, last error) of an outbox item, for tests and `doctor`."""
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT attempts, next_attempt_at, last_error FROM outbox WHERE id = ?", (outbox_id,)
            )
        )
        if not rows:
            raise OutboxItemNotFound(f"no outbox item {outbox_id}")
        attempts, next_at, error = rows[0]
        return int(attempts), None if next_at is None else from_db_time(next_at), error
