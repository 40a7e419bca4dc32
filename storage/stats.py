"""Figures for shift leads: cases per day by priority, open cases by area, hotspots, and ages of open cases.

Aggregates only (counts, areas, case ids): no report content. Quarantined cases are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import aiosqlite

from bot.domain.models import PeopleCount, Priority
from bot.domain.workflow import OPEN_STATUSES
from storage.timestamps import from_db_time, to_db_time

__all__ = ["Hotspot", "StatsStore"]

_OPEN = tuple(status.value for status in sorted(OPEN_STATUSES))
_OPEN_SQL = f"status IN ({', '.join('?' * len(_OPEN))})"


@dataclass(frozen=True)
class Hotspot:
    """An area with open cases: how many, how many people reported held (at least), which cases."""

    area_id: str
    open_cases: int
    people_at_least: int
    case_ids: tuple[str, ...]
    linked_cases: int


class StatsStore:
    """Read-only aggregate queries over cases."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def cases_per_day(self, since: datetime) -> dict[date, dict[Priority, int]]:
        """New cases per calendar day (UTC) and priority, from `since`."""
        rows = await self._conn.execute_fetchall(
            "SELECT substr(created_at, 1, 10), priority, COUNT(*) FROM cases "
            "WHERE created_at >= ? AND quarantined = 0 GROUP BY 1, 2",
            (to_db_time(since),),
        )
        result: dict[date, dict[Priority, int]] = {}
        for day, priority, count in rows:
            result.setdefault(date.fromisoformat(day), {})[Priority(priority)] = int(count)
        return result

    async def open_by_priority(self) -> dict[Priority, int]:
        rows = await self._conn.execute_fetchall(
            f"SELECT priority, COUNT(*) FROM cases WHERE quarantined = 0 AND {_OPEN_SQL} GROUP BY priority",  # noqa: S608 (constants only)
            _OPEN,
        )
        return {Priority(priority): int(count) for priority, count in rows}

    async def open_ages(self) -> list[tuple[Priority, datetime]]:
        """(priority, created time) of every open case, for the daily digest's age buckets."""
        rows = await self._conn.execute_fetchall(
            f"SELECT priority, created_at FROM cases WHERE quarantined = 0 AND {_OPEN_SQL}",  # noqa: S608 (constants only)
            _OPEN,
        )
        return [(Priority(priority), from_db_time(created)) for priority, created in rows]

    async def hotspots(self, limit: int = 10) -> list[Hotspot]:
        """Areas by number of open cases, then people reported held: what a raid needs to plan."""
        rows = await self._conn.execute_fetchall(
            f"SELECT area_id, id, people FROM cases WHERE quarantined = 0 AND area_id IS NOT NULL "  # noqa: S608 (constants only)
            f"AND {_OPEN_SQL} ORDER BY priority, created_at",
            _OPEN,
        )
        areas: dict[str, list[tuple[str, str | None]]] = {}
        for area_id, case_id, people in rows:
            areas.setdefault(str(area_id), []).append((str(case_id), people))
        links = await self._conn.execute_fetchall("SELECT case_id, linked_case_id FROM case_links")
        linked = {str(a) for a, _b in links} | {str(b) for _a, b in links}
        spots = []
        for area_id, cases in areas.items():
            people = sum(PeopleCount(p).at_least if p else 0 for _c, p in cases)
            ids = tuple(case_id for case_id, _p in cases)
            spots.append(Hotspot(area_id, len(cases), people, ids, sum(1 for c in ids if c in linked)))
        spots.sort(key=lambda s: (-s.open_cases, -s.people_at_least, s.area_id))
        return spots[:limit]
