"""Escalation: a P1 case nobody has acknowledged within N minutes is re-alerted, naming those on duty.

Re-alerts repeat every N minutes until someone acts. What was re-alerted when is kept in memory: after a
restart a waiting P1 is re-alerted at once, which errs on the side of the person in danger.
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
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cases = cases
        self.roster = roster
        self.after = after
        self.clock = clock
        self._last: dict[str, datetime] = {}

    async def due(self) -> list[Escalation]:
        """The P1 cases to re-alert now (each is then not due again for `after`)."""
        now = self.clock()
        waiting = await self.cases.find(status=CaseStatus.NEW, priority=Priority.P1, limit=50)
        open_ids = {row.case_id for row in waiting}
        for case_id in list(self._last):
            if case_id not in open_ids:
                del self._last[case_id]  # acknowledged or closed: forget it
        roster = tuple(label or str(user_id) for user_id, label in await self.roster.on_duty())
        found = []
        for row in waiting:
            if row.withdrawn or now - row.created_at < self.after:
                continue
            last = self._last.get(row.case_id)
            if last is not None and now - last < self.after:
                continue
            self._last[row.case_id] = now
            found.append(Escalation(row.case_id, now - row.created_at, roster))
        return found
