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
# Spelled out, not bound: the partial index of migration 0008 serves only this exact WHERE term.
_OPEN_SQL = f"status IN ({', '.join(repr(status) for status in _OPEN)})"
_OPEN_CASES = f"quarantined = 0 AND {_OPEN_SQL}"
# Open cases (migration 0008's index): named, because SQLite would otherwise read every case of an area
# through cases_by_area, or every open row through cases_by_status, whatever the history behind them.
_OPEN_INDEX = "cases INDEXED BY cases_open_queue"
# PeopleCount.at_least in SQL, so that hotspots add up people held without reading every case.
_PEOPLE_AT_LEAST = (
    "CASE people "
    + " ".join(f"WHEN {count.value!r} THEN {count.at_least}" for count in PeopleCount)
    + " ELSE 0 END"
)
# How many of an area's case ids a hotspot carries (the most urgent first): enough to show some and to
# tell that there are more.
HOTSPOT_CASE_IDS = 10


@dataclass(frozen=True)
class Hotspot:
    """An area with open cases: how many, how many people reported held (at least), which cases (the
    first ``HOTSPOT_CASE_IDS``, most urgent first), and how many of them are linked to another case."""

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
            # Counted from migration 0008's index alone: SQLite would otherwise visit every open row.
            f"SELECT priority, COUNT(*) FROM {_OPEN_INDEX} WHERE {_OPEN_CASES} GROUP BY priority",  # noqa: S608 (constants only)
        )
        return {Priority(priority): int(count) for priority, count in rows}

    async def open_ages(self) -> list[tuple[Priority, datetime]]:
        """(priority, created time) of every open case, for the daily digest's age buckets."""
        rows = await self._conn.execute_fetchall(
            f"SELECT priority, created_at FROM {_OPEN_INDEX} WHERE {_OPEN_CASES}",  # noqa: S608 (constants only)
        )
        return [(Priority(priority), from_db_time(created)) for priority, created in rows]

    async def hotspots(self, limit: int = 10) -> list[Hotspot]:
        """Areas by number of open cases, then people reported held: what a raid needs to plan.

        Counted in SQL; each hotspot carries its first ``HOTSPOT_CASE_IDS`` case ids, most urgent first.
        """
        counted = await self._conn.execute_fetchall(
            f"SELECT area_id, COUNT(*), SUM({_PEOPLE_AT_LEAST}) FROM {_OPEN_INDEX} "  # noqa: S608 (constants only)
            f"WHERE {_OPEN_CASES} AND area_id IS NOT NULL GROUP BY area_id",
        )
        top = sorted(counted, key=lambda row: (-int(row[1]), -int(row[2]), str(row[0])))[:limit]
        if not top:
            return []
        areas = [str(row[0]) for row in top]
        marks = ", ".join("?" * len(areas))
        rows = await self._conn.execute_fetchall(
            f"SELECT area_id, COUNT(*) FROM {_OPEN_INDEX} WHERE {_OPEN_CASES} AND area_id IN ({marks}) "  # noqa: S608 (constants only)
            "AND (EXISTS (SELECT 1 FROM case_links l WHERE l.case_id = cases.id) "
            "OR EXISTS (SELECT 1 FROM case_links l WHERE l.linked_case_id = cases.id)) "
            "GROUP BY area_id",
            areas,
        )
        linked = {str(area_id): int(count) for area_id, count in rows}
        spots = []
        for area_id, open_cases, people in top:
            # In queue order (migration 0008's index), not through every case the area ever had.
            ids = await self._conn.execute_fetchall(
                f"SELECT id FROM {_OPEN_INDEX} WHERE {_OPEN_CASES} AND area_id = ? "  # noqa: S608 (constants only)
                "ORDER BY priority, created_at, id LIMIT ?",
                (area_id, HOTSPOT_CASE_IDS),
            )
            spots.append(
                Hotspot(
                    str(area_id),
                    int(open_cases),
                    int(people),
                    tuple(str(row[0]) for row in ids),
                    linked.get(str(area_id), 0),
                )
            )
        return spots
