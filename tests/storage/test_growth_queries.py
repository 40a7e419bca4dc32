"""The reads that must stay fast as cases accumulate (bench/growth.py): the corroboration candidates read
only near the new report yet link exactly the same cases, hotspots counted in SQL agree with counting case
by case, and the queue, /mine, hotspots and corroboration queries use migration 0008's indexes."""

from __future__ import annotations

import random
from datetime import timedelta

import aiosqlite
import pytest

from bot.crypto import Keyring, hash_receipt
from bot.domain.corroboration import find_corroborating
from bot.domain.models import PeopleCount, Place, Priority, Reason, Report, Triage
from bot.domain.records import NewCase
from storage.cases import NEAR_DEGREES, CaseStore
from storage.stats import HOTSPOT_CASE_IDS, StatsStore
from storage.workflow import WorkflowStore
from tests.storage.factories import NOW

WINDOW = timedelta(days=30)
RECEIPT_HASH = hash_receipt("1234 5678 9012 3456")  # scrypt once: each case gets its own lookup
# (area id, latitude, longitude) of the points cases cluster around; the last two test the edges of the
# longitude band (far north, and next to the antimeridian).
SPOTS = (
    ("kh-preah-sihanouk", 10.6275, 103.5220),
    ("kh-phnom-penh", 11.5564, 104.9282),
    ("mm-myawaddy", 16.6890, 98.5070),
    ("no-tromso", 69.6496, 18.9560),
    ("fj-taveuni", -16.8000, 179.9990),
)
NAMES = ("Golden Fortune building B", "Golden Fortun bldg B", "KK Park tower 3", "Jin Bei 382", "blue gate")
PEOPLE = (*PeopleCount, None)


def _place(rng: random.Random) -> Place:
    area_id, latitude, longitude = rng.choice(SPOTS)
    point = rng.random() < 0.6
    # Mostly within a few hundred metres; sometimes just past 300 m, or a few kilometres away.
    spread = rng.choice((0.001, 0.003, 0.004, 0.03))
    return Place(
        latitude=latitude + rng.uniform(-spread, spread) if point else None,
        longitude=min(180.0, longitude + rng.uniform(-spread, spread)) if point else None,
        area_id=area_id if rng.random() < 0.9 else None,
        details=rng.choice(NAMES) if rng.random() < 0.7 else None,
    )


def _new_case(keyring: Keyring, index: int, report: Report, created_at, *, quarantined: bool) -> NewCase:
    return NewCase(
        case_id=f"C{index:03d}-TEST",
        created_at=created_at,
        report=report,
        triage=Triage(
            priority=Priority(1 + index % 4),
            reasons=(Reason.CONFINEMENT,),
            score=50,
            corroborating_cases=0,
            rules_version="test-1",
        ),
        linked_case_ids=(),
        reporter_pseudonym=keyring.pseudonym(index),
        receipt_lookup=keyring.receipt_lookup(f"{index:016d}"),
        receipt_hash=RECEIPT_HASH,
        contact_chat_id=None,
        media=(),
        quarantined=quarantined,
        update_id=None,
    )


async def _seed(store: CaseStore, keyring: Keyring, count: int, seed: int) -> list[Report]:
    rng = random.Random(seed)
    reports = []
    for index in range(count):
        report = Report(place=_place(rng), people=rng.choice(PEOPLE))
        created = NOW - timedelta(days=rng.uniform(0, 40))  # some before the window
        await store.create_case(_new_case(keyring, index, report, created, quarantined=rng.random() < 0.05))
        reports.append(report)
    return reports


async def test_candidates_near_the_report_link_the_same_cases_as_the_whole_window(store, keyring):
    """For reports at seeded places (clusters, band edges, far north, the antimeridian), reading only the
    cases near the point or in the described area links exactly what reading the whole window links."""
    await _seed(store, keyring, 160, seed=7)
    everything = await store.recent_summaries(NOW - WINDOW)
    rng = random.Random(11)
    linked_any = narrowed = 0
    for _ in range(150):
        report = Report(place=_place(rng))
        near = await store.recent_summaries(NOW - WINDOW, report.place)
        assert {c.case_id for c in near} <= {c.case_id for c in everything}
        expected = find_corroborating(report, everything, NOW)
        assert find_corroborating(report, near, NOW) == expected, report.place
        linked_any += bool(expected)
        narrowed += len(near) < len(everything)
    assert linked_any > 30, "the seeded places corroborate each other often enough to compare"
    assert narrowed == 150, "every lookup read fewer cases than the whole window"


async def test_a_report_with_neither_point_nor_described_area_reads_no_candidates(store, keyring):
    await _seed(store, keyring, 20, seed=3)
    assert await store.recent_summaries(NOW - WINDOW, Place(area_id="kh-phnom-penh")) == []
    assert await store.recent_summaries(NOW - WINDOW, Place(details="building B")) == []


async def test_a_case_just_inside_the_corroboration_radius_is_read(store, keyring):
    """300 m north of a point whose rounding goes the other way: still read, still linked."""
    base = Place(latitude=10.6249, longitude=103.5249, area_id="kh-preah-sihanouk")
    await store.create_case(_new_case(keyring, 1, Report(place=base), NOW, quarantined=False))
    moved = Place(latitude=10.6249 + 0.0026, longitude=103.5249)  # 289 m; rounds to 10.63, not 10.62
    near = await store.recent_summaries(NOW - WINDOW, moved)
    assert [c.case_id for c in near] == ["C001-TEST"]
    assert find_corroborating(Report(place=moved), near, NOW) == ("C001-TEST",)
    far = Place(latitude=10.6249 + NEAR_DEGREES + 0.006, longitude=103.5249)
    assert await store.recent_summaries(NOW - WINDOW, far) == []


async def test_hotspots_counted_in_sql_agree_with_counting_case_by_case(conn, store, keyring):
    """Open, unquarantined cases per area, people held at least, linked cases and the most urgent ids."""
    await _seed(store, keyring, 120, seed=5)
    rng = random.Random(9)
    ids = [f"C{index:03d}-TEST" for index in range(120)]
    await conn.executemany(
        "UPDATE cases SET status = 'closed' WHERE id = ?", [(i,) for i in rng.sample(ids, 30)]
    )
    await conn.executemany(
        "INSERT OR IGNORE INTO case_links (case_id, linked_case_id) VALUES (?, ?)",
        [tuple(rng.sample(ids, 2)) for _ in range(25)],
    )
    await conn.commit()

    rows = await conn.execute_fetchall(
        "SELECT id, area_id, people FROM cases WHERE quarantined = 0 AND status <> 'closed' "
        "AND area_id IS NOT NULL ORDER BY priority, created_at, id"
    )
    links = await conn.execute_fetchall("SELECT case_id, linked_case_id FROM case_links")
    linked = {a for a, _ in links} | {b for _, b in links}
    expected: dict[str, list[tuple[str, str | None]]] = {}
    for case_id, area_id, people in rows:
        expected.setdefault(area_id, []).append((case_id, people))

    spots = await StatsStore(conn).hotspots(limit=3)
    assert len(spots) == 3
    ranking = sorted(
        expected,
        key=lambda a: (
            -len(expected[a]),
            -sum(PeopleCount(p).at_least if p else 0 for _, p in expected[a]),
            a,
        ),
    )
    assert [spot.area_id for spot in spots] == ranking[:3]
    for spot in spots:
        cases = expected[spot.area_id]
        assert spot.open_cases == len(cases)
        assert spot.people_at_least == sum(PeopleCount(p).at_least if p else 0 for _, p in cases)
        assert spot.case_ids == tuple(c for c, _ in cases[:HOTSPOT_CASE_IDS])
        assert spot.linked_cases == sum(1 for c, _ in cases if c in linked)


async def _plans(conn: aiosqlite.Connection, call) -> list[str]:
    """The query plans of the SELECTs on cases that ``call`` runs (as traced, with their values)."""
    statements: list[str] = []
    await conn.set_trace_callback(statements.append)
    try:
        await call()
    finally:
        await conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT") and " cases" in sql:
            rows = await conn.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}")
            plans.append(" | ".join(str(row[3]) for row in rows))
    return plans


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("queue", "cases_open_queue"),
        ("mine", "cases_open_by_assignee"),
        ("hotspot ids", "cases_open_queue"),
        ("corroboration", "cases_by_area"),
        ("corroboration", "cases_by_approx_latitude"),
    ],
)
async def test_the_busiest_reads_use_their_indexes(conn, store, keyring, name, index):
    """A query that stops matching its partial index's WHERE term would scan every case: caught here."""
    await _seed(store, keyring, 10, seed=1)
    workflow = WorkflowStore(conn, keyring)
    calls = {
        "queue": lambda: workflow.queue(20),
        "mine": lambda: workflow.mine(1000),
        "hotspot ids": lambda: StatsStore(conn).hotspots(8),
        "corroboration": lambda: store.recent_summaries(
            NOW - WINDOW, Place(latitude=10.62, longitude=103.52, area_id="kh-preah-sihanouk", details="B")
        ),
    }
    plans = await _plans(conn, calls[name])
    assert plans, "the call ran a query on cases"
    assert any(index in plan for plan in plans), plans
