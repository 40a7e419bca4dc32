"""Escalation: an unacknowledged P1 is re-alerted after N minutes, and again every N minutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain.models import CaseStatus, Priority
from bot.services.escalation import EscalationService

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    case_id: str
    priority: Priority
    status: CaseStatus
    created_at: datetime
    area_id: str | None = None
    assignee_id: int | None = None
    withdrawn: bool = False


class Cases:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    async def find(self, *, status=None, priority=None, limit=50):
        return [
            r
            for r in self.rows
            if (status is None or r.status is status) and (priority is None or r.priority is priority)
        ]


class Roster:
    def __init__(self, people: list[tuple[int, str | None]]) -> None:
        self.people = people

    async def on_duty(self):
        return list(self.people)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make(cases: Cases, people=None) -> tuple[EscalationService, Clock]:
    clock = Clock()
    return EscalationService(
        cases, Roster(people or [(1, "Dara"), (2, None)]), timedelta(minutes=10), clock=clock
    ), clock


async def test_a_p1_waiting_longer_than_the_limit_is_escalated_with_those_on_duty():
    """A new P1 older than 10 minutes is due, naming the on-duty staff (their id when no name is known)."""
    cases = Cases()
    cases.rows.append(Row("AAAA-AAAA", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=11)))
    service, _clock = make(cases)
    [found] = await service.due()
    assert found.case_id == "AAAA-AAAA"
    assert found.on_duty == ("Dara", "2")
    assert found.waited == timedelta(minutes=11)


async def test_a_young_p1_and_other_priorities_are_not_escalated():
    """A P1 younger than the limit, an acknowledged P1 and an old P2 are not due."""
    cases = Cases()
    cases.rows += [
        Row("YOUNG-P1", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=9)),
        Row("ACKED-P1", Priority.P1, CaseStatus.ACKNOWLEDGED, T0 - timedelta(hours=2)),
        Row("OLDER-P2", Priority.P2, CaseStatus.NEW, T0 - timedelta(hours=2)),
    ]
    service, _clock = make(cases)
    assert await service.due() == []


async def test_an_escalation_repeats_every_interval_until_someone_acts():
    """Once escalated, a case is due again only after another 10 minutes; acknowledged, never again."""
    cases = Cases()
    cases.rows.append(Row("AAAA-AAAA", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=30)))
    service, clock = make(cases)
    assert len(await service.due()) == 1
    clock.now += timedelta(minutes=5)
    assert await service.due() == []
    clock.now += timedelta(minutes=5)
    assert len(await service.due()) == 1
    cases.rows[0] = Row("AAAA-AAAA", Priority.P1, CaseStatus.ACKNOWLEDGED, T0 - timedelta(minutes=30))
    clock.now += timedelta(hours=1)
    assert await service.due() == []


async def test_a_withdrawn_p1_is_not_escalated():
    """A withdrawn case has no reporter to reach urgently; it is not re-alerted."""
    cases = Cases()
    cases.rows.append(Row("AAAA-AAAA", Priority.P1, CaseStatus.NEW, T0 - timedelta(hours=1), withdrawn=True))
    service, _clock = make(cases)
    assert await service.due() == []


async def test_escalations_wait_when_the_group_has_no_room():
    """Each escalation asks for room in the group's budget; those refused stay due for the next run."""
    cases = Cases()
    for n in range(3):
        cases.rows.append(Row(f"P1-{n}", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=30)))
    service, clock = make(cases)
    room = [True, False]
    taken = [e.case_id for e in await service.due(allow=lambda: room.pop(0) if room else False)]
    assert taken == ["P1-0"]
    clock.now += timedelta(minutes=1)
    assert [e.case_id for e in await service.due(allow=lambda: True)] == ["P1-1", "P1-2"]
    assert await service.due(allow=lambda: True) == []
