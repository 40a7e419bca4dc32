"""A surge of reports about one compound: each new case links only the most recent earlier ones, while the
triage still counts every corroborating report (through the intake service, on a real SQLite file)."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.corroboration import MAX_LINKED_CASES
from bot.domain.models import Place, Report
from bot.services.intake import IntakeService
from storage.cases import MAX_LINKS_SHOWN

SURGE = 30


def same_compound() -> Report:
    return Report(
        place=Place(country="KH", area_id="kh-sen-sok", details="Golden Fortune compound, building 7")
    )


async def test_a_surge_links_the_newest_cases_and_counts_them_all(store, keyring, clock, conn):
    service = IntakeService(store, keyring, clock=clock, reports_per_hour=SURGE + 1)
    receipts = []
    for n in range(SURGE):
        clock.now += timedelta(minutes=1)
        receipts.append(
            await service.submit(same_compound(), reporter_id=7_000_000_000 + n, contact_chat_id=None)
        )
    last = receipts[-1].case_id
    counted = list(await conn.execute_fetchall("SELECT corroborating_cases FROM cases WHERE id = ?", (last,)))
    assert counted == [(SURGE - 1,)]
    stored = [
        r[0]
        for r in await conn.execute_fetchall(
            "SELECT linked_case_id FROM case_links WHERE case_id = ?", (last,)
        )
    ]
    newest_earlier = [r.case_id for r in receipts[-1 - MAX_LINKED_CASES : -1]]
    assert sorted(stored) == sorted(newest_earlier)
    # Links grow linearly with the surge, not quadratically.
    total = list(await conn.execute_fetchall("SELECT COUNT(*) FROM case_links"))
    assert total[0][0] <= SURGE * MAX_LINKED_CASES
    assert MAX_LINKS_SHOWN == 20
    # The tenth case links 9 earlier ones and is linked from the 20 after it: its view shows the most recent.
    middle = await store.get_case(receipts[9].case_id)
    assert middle is not None
    assert middle.linked_case_ids == tuple(sorted(r.case_id for r in receipts[10:30]))
    assert middle.more_links
