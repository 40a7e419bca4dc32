"""What a shift lead looks at: figures over the last days, hotspots, and the daily digest of open cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from bot.domain.models import Priority
from bot.domain.workflow import Action
from bot.services.casework import CaseworkService

AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_1_day", timedelta(days=1)),
    ("1_to_3_days", timedelta(days=3)),
    ("3_to_7_days", timedelta(days=7)),
)
OLDER = "over_7_days"


class HotspotLike(Protocol):
    @property
    def area_id(self) -> str: ...

    @property
    def open_cases(self) -> int: ...

    @property
    def people_at_least(self) -> int: ...

    @property
    def case_ids(self) -> tuple[str, ...]: ...

    @property
    def linked_cases(self) -> int: ...


class StatsPort(Protocol):
    async def cases_per_day(self, since: datetime) -> dict[date, dict[Priority, int]]: ...

    async def open_by_priority(self) -> dict[Priority, int]: ...

    async def open_ages(self) -> list[tuple[Priority, datetime]]: ...

    async def hotspots(self, limit: int = 10) -> Sequence[HotspotLike]: ...


@dataclass(frozen=True)
class Figures:
    """Cases per day by priority for each of the last `days` days (oldest first), and what is open."""

    days: tuple[date, ...]
    per_day: dict[date, dict[Priority, int]]
    open_by_priority: dict[Priority, int]
    hotspots: tuple[HotspotLike, ...]

    @property
    def total_new(self) -> int:
        return sum(sum(counts.values()) for counts in self.per_day.values())

    @property
    def total_open(self) -> int:
        return sum(self.open_by_priority.values())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def age_bucket(age: timedelta) -> str:
    for name, limit in AGE_BUCKETS:
        if age < limit:
            return name
    return OLDER


class InsightService:
    """Figures, hotspots and the digest; staff-only, and each look is audited like any other action."""

    def __init__(
        self, casework: CaseworkService, stats: StatsPort, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.casework = casework
        self.stats = stats
        self.clock = clock

    async def figures(self, actor: int, days: int = 30) -> Figures:
        await self.casework.require(actor, Action.VIEW_QUEUE)
        await self.casework.workflow.record_view(None, actor, Action.VIEW_QUEUE)
        today = self.clock().date()
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return Figures(
            days=tuple(first + timedelta(days=i) for i in range(days)),
            per_day=await self.stats.cases_per_day(since),
            open_by_priority=await self.stats.open_by_priority(),
            hotspots=tuple(await self.stats.hotspots(8)),
        )

    async def hotspots(self, actor: int) -> Sequence[HotspotLike]:
        await self.casework.require(actor, Action.VIEW_QUEUE)
        await self.casework.workflow.record_view(None, actor, Action.VIEW_QUEUE)
        return await self.stats.hotspots(10)

    async def digest(self) -> dict[Priority, dict[str, int]]:
        """Open cases by priority and age bucket (for the daily digest; no actor, no content)."""
        now = self.clock()
        result: dict[Priority, dict[str, int]] = {}
        for priority, created in await self.stats.open_ages():
            bucket = age_bucket(now - created)
            result.setdefault(priority, {}).setdefault(bucket, 0)
            result[priority][bucket] += 1
        return result
