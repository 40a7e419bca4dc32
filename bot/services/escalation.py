"""Escalation: a P1 case nobody has acknowledged within N minutes is re-alerted, naming those on duty.

Re-alerts repeat every N minutes until someone acts. When each case was last re-alerted is kept in the
database when a store is given, so that a restart neither re-alerts every waiting P1 at once nor forgets one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.domain.models import CaseStatus, Priority
from bot.services.casework import QueueRowLike


class WaitingCases(Protocol):
    async def find(
        self, *, status: CaseStatus | None = None, priority: Priority | None = None, limit: int = 50
    ) -> Sequence[QueueRowLike]: ...


class DutyRoster(Protocol):
    async def on_duty(self) -> list[tuple[int, str | None]]: ...


class EscalationMemory(Protocol):
    """Where the times of the last re-alerts are kept (the bot's run-time facts)."""

    async def values_with_prefix(self, prefix: str) -> dict[str, str]: ...

    async def set_value(self, key: str, value: str) -> None: ...

    async def delete_values(self, keys: Sequence[str]) -> None: ...


MEMORY_PREFIX = "escalated:"


@dataclass(frozen=True)
class Escalation:
    """A P1 case to re-alert: how long it has waited, and who is on duty (their labels)."""

    case_id: str
    waited: timedelta
    on_duty: tuple[str, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EscalationService:
    """Finds unacknowledged P1 cases that waited too long since they came in or were last re-alerted."""

    def __init__(
        self,
        cases: WaitingCases,
        roster: DutyRoster,
        after: timedelta,
        *,
        memory: EscalationMemory | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cases = cases
        self.roster = roster
        self.after = after
        self.clock = clock
        self.memory = memory
        self._last: dict[str, datetime] | None = None if memory is not None else {}

    async def _remembered(self) -> dict[str, datetime]:
        if self._last is None:
            self._last = {}
            stored = await self.memory.values_with_prefix(MEMORY_PREFIX) if self.memory is not None else {}
            for key, value in stored.items():
                try:
                    when = datetime.fromisoformat(value)
                except ValueError:
                    continue  # unreadable: treated as never re-alerted, which errs on the side of the person
                self._last[key.removeprefix(MEMORY_PREFIX)] = (
                    when if when.tzinfo else when.replace(tzinfo=UTC)
                )
        return self._last

    async def due(self, allow: Callable[[], bool] | None = None) -> list[Escalation]:
        """The P1 cases to re-alert now (each is then not due again for `after`).

        ``allow`` is asked before each one is taken (the coordinators' group's message budget, shared with
        the alerts): once it says no, the rest stay due for the next run.
        """
        now = self.clock()
        last_alerts = await self._remembered()
        waiting = await self.cases.find(status=CaseStatus.NEW, priority=Priority.P1, limit=50)
        open_ids = {row.case_id for row in waiting}
        gone = [case_id for case_id in last_alerts if case_id not in open_ids]
        for case_id in gone:
            del last_alerts[case_id]  # acknowledged or closed: forget it
        if gone and self.memory is not None:
            await self.memory.delete_values([MEMORY_PREFIX + case_id for case_id in gone])
        roster = tuple(label or str(user_id) for user_id, label in await self.roster.on_duty())
        found = []
        for row in waiting:
            if row.withdrawn or now - row.created_at < self.after:
                continue
            last = last_alerts.get(row.case_id)
            if last is not None and now - last < self.after:
                continue
            if allow is not None and not allow():
                break
            last_alerts[row.case_id] = now
            if self.memory is not None:
                await self.memory.set_value(MEMORY_PREFIX + row.case_id, now.isoformat())
            found.append(Escalation(row.case_id, now - row.created_at, roster))
        return found
