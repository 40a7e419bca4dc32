"""Benchmark: what backs `/queue`, `/mine`, the corroboration lookup at submit and `/stats`, at 10,000,
100,000 and 1,000,000 cases.

The databases are ``bench/export.py``'s synthetic ones (cached in the same folder, built if missing; the
schema is brought up to date with ``storage.migrations.migrate`` first, as the bot does at start). Each
call goes through the real storage code over one aiosqlite connection, exactly as the bot makes it:

- queue: ``WorkflowStore.queue(20)`` (what `/queue` shows); mine: ``WorkflowStore.mine(...)`` for one
  coordinator (`/mine`);
- corroboration: ``CaseStore.recent_summaries`` for the 30-day window, then
  ``bot.domain.corroboration.find_corroborating`` (what ``IntakeService.submit`` does before it commits),
  for reports at places drawn like the synthetic ones (a seeded generator: the same places every run);
- stats: ``StatsStore.cases_per_day`` (30 days), ``open_by_priority`` and ``hotspots(8)``: the figures
  behind `/stats` (``InsightService.figures`` adds a role check and one audit entry, the same at any size).

The synthetic cases span 18 months ending on 2026-07-03, so "now" is that day: the 30-day windows hold 1/18
of the cases. Each call is timed many times (after one untimed warm-up call); the table gives the median
and the 95th percentile, and the summary fits the growth exponent from the smallest to the largest size
(0: flat, 1: linear in the number of cases).

    .venv/bin/python bench/growth.py                      # 10k, 100k and 1M cases (make bench-growth)
    .venv/bin/python bench/growth.py --sizes 10000,100000 --max-seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import (
    BENCH_KEY,
    END,
    EXPORT,
    HISTORY,
    STAFF,
    Population,
    Profile,
    _place_details,
    build_database,
)

from bot.crypto import Keyring
from bot.domain.corroboration import find_corroborating
from bot.domain.models import Place, Report
from bot.services.intake import CORROBORATION_WINDOW
from storage.cases import CaseStore
from storage.db import open_database
from storage.migrations import migrate
from storage.stats import StatsStore
from storage.timestamps import to_db_time
from storage.workflow import WorkflowStore

DEFAULT_SIZES = "10000,100000,1000000"
NOW = END
PROFILES = {profile.name: profile for profile in (HISTORY, EXPORT)}
COORDINATOR = STAFF[0][0]


@dataclass
class Timing:
    size: int
    name: str
    seconds: list[float]
    rows: int  # what the call had to look at, for context (see ``OPERATIONS``)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


class Places:
    """Report places drawn like the synthetic cases' (same area weights), reproducibly."""

    def __init__(self, size: int, profile: Profile, seed: int = 20261128) -> None:
        self.population = Population(size, Keyring(BENCH_KEY), profile)
        self.rng = random.Random(seed)

    def report(self) -> Report:
        rng, population = self.rng, self.population
        area = population.areas[population.area.pick(rng)]
        latitude = longitude = None
        if rng.random() < 0.5:
            latitude = area.latitude + rng.uniform(-0.05, 0.05)
            longitude = area.longitude + rng.uniform(-0.05, 0.05)
        place = Place(
            latitude=latitude,
            longitude=longitude,
            country=area.country,
            area_id=area.id,
            details=_place_details(rng),
        )
        return Report(place=place, details="bench")


async def _time(
    call: Callable[[], Awaitable[Any]], min_calls: int, max_calls: int, max_seconds: float
) -> list[float]:
    await call()  # warm-up: the page cache and SQLite's statement cache
    seconds: list[float] = []
    started = time.perf_counter()
    while len(seconds) < max_calls and (
        len(seconds) < min_calls or time.perf_counter() - started < max_seconds
    ):
        before = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - before)
    return seconds


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        window = to_db_time(NOW - CORROBORATION_WINDOW)
        rows = {
            "total": "SELECT COUNT(*) FROM cases",
            "open": "SELECT COUNT(*) FROM cases WHERE status <> 'closed' AND quarantined = 0",
            "mine": f"SELECT COUNT(*) FROM cases WHERE status <> 'closed' AND assignee_id = {COORDINATOR}",
            "window": "SELECT COUNT(*) FROM cases WHERE created_at >= ? AND quarantined = 0",
        }
        return {
            name: int(conn.execute(sql, (window,) if "?" in sql else ()).fetchone()[0])
            for name, sql in rows.items()
        }
    finally:
        conn.close()


async def measure(path: Path, size: int, args: argparse.Namespace) -> list[Timing]:
    counts = _counts(path)
    conn = await open_database(path)
    try:
        started = time.perf_counter()
        applied = await migrate(conn)
        if applied:
            _note(f"  migrated ({', '.join(applied)}) in {time.perf_counter() - started:.1f} s")
        keyring = Keyring(BENCH_KEY)
        cases = CaseStore(conn, keyring, clock=lambda: NOW)
        workflow = WorkflowStore(conn, keyring, clock=lambda: NOW)
        stats = StatsStore(conn)
        places = Places(size, PROFILES[args.profile])
        since = NOW - timedelta(days=29)
        found: list[int] = []

        async def corroborate() -> None:
            report = places.report()
            candidates = await cases.recent_summaries(NOW - CORROBORATION_WINDOW, report.place)
            found.append(len(find_corroborating(report, candidates, NOW)))

        async def figures() -> None:
            await stats.cases_per_day(since)
            await stats.open_by_priority()
            await stats.hotspots(8)

        operations: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
            ("queue (/queue)", lambda: workflow.queue(20), counts["open"]),
            ("mine (/mine)", lambda: workflow.mine(COORDINATOR), counts["mine"]),
            ("corroboration at submit", corroborate, counts["window"]),
            ("stats: cases per day, 30 days", lambda: stats.cases_per_day(since), counts["window"]),
            ("stats: open by priority", stats.open_by_priority, counts["open"]),
            ("stats: hotspots", lambda: stats.hotspots(8), counts["open"]),
            ("stats: all three (/stats)", figures, counts["open"]),
        ]
        timings = []
        for name, call, rows in operations:
            seconds = await _time(call, args.min_calls, args.max_calls, args.max_seconds)
            timing = Timing(size, name, seconds, rows)
            _note(
                f"  {name}: median {timing.median * 1e3:.2f} ms, p95 {timing.p95 * 1e3:.2f} ms "
                f"({len(seconds)} calls)"
            )
            timings.append(timing)
        if found:
            _note(f"  corroboration: {statistics.mean(found):.1f} linked cases per report on average")
        return timings
    finally:
        await conn.close()


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:,.0f}" if milliseconds >= 100 else f"{milliseconds:.2f}"


def _verdict(exponent: float) -> str:
    if exponent < 0.15:
        return "flat / logarithmic"
    if exponent < 0.7:
        return "sub-linear"
    return "linear"


def print_report(timings: list[Timing], counts: dict[int, dict[str, int]], total: float) -> None:
    print(f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()},")
    print(f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}")
    print()
    print("| size | open cases | in the 30-day window |")
    print("|---:|---:|---:|")
    for size, count in sorted(counts.items()):
        print(f"| {size:,} | {count['open']:,} | {count['window']:,} |")
    print()
    print("| call | size | calls | median ms | p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for t in timings:
        print(f"| {t.name} | {t.size:,} | {len(t.seconds)} | {_ms(t.median)} | {_ms(t.p95)} |")
    sizes = sorted({t.size for t in timings})
    print()
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print(
            f"Growth from {small:,} to {large:,} cases (x{large / small:,.0f}): median ratio and the "
            "exponent k in time ~ cases^k"
        )
        print("(0: flat, 1: linear)")
        print()
        print("| call | median ratio | k | verdict |")
        print("|---|---:|---:|---|")
        by_key = {(t.name, t.size): t for t in timings}
        for name in dict.fromkeys(t.name for t in timings):
            if (name, small) in by_key and (name, large) in by_key:
                ratio = by_key[name, large].median / by_key[name, small].median
                exponent = math.log(max(ratio, 1e-9)) / math.log(large / small)
                print(f"| {name} | {ratio:.1f} | {exponent:.2f} | {_verdict(exponent)} |")
        print()
    print(f"Whole run (databases included): {total / 60:.1f} minutes.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="case counts, comma-separated")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "beacon-bench-export",
        help="where the generated databases are cached, shared with bench/export.py (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=HISTORY.name,
        help="history: a longer history at the same pace (default); export: bench/export.py's databases, "
        "every size over the same 18 months",
    )
    parser.add_argument("--min-calls", type=int, default=5, help="timed calls per operation, at least")
    parser.add_argument("--max-calls", type=int, default=300, help="timed calls per operation, at most")
    parser.add_argument(
        "--max-seconds", type=float, default=15.0, help="stop timing an operation after this (past min-calls)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = sorted({int(size) for size in args.sizes.split(",")})
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    timings: list[Timing] = []
    counts: dict[int, dict[str, int]] = {}
    for size in sizes:
        path, took = build_database(workdir, size, PROFILES[args.profile])
        built = f"built in {took:.0f} s" if took is not None else "cached"
        _note(f"database of {size:,} cases: {path} ({path.stat().st_size / 1e6:,.0f} MB, {built})")
        counts[size] = _counts(path)
        timings += asyncio.run(measure(path, size, args))
    print_report(timings, counts, time.perf_counter() - started)


if __name__ == "__main__":
    main()
