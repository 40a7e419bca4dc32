"""A burst of lower-priority reports is announced in one digest at once; each ticket still follows, once."""

from __future__ import annotations

from telegram.ext import CallbackContext

from handlers.coordinators.delivery import deliver_alerts
from tests.e2e.casework_flow import quick, runner
from tests.e2e.conftest import Harness
from tests.e2e.test_alert_delivery import LOW, LOWEST, file_report


async def test_a_burst_of_low_priority_cases_is_announced_in_one_digest_then_ticketed(
    harness: Harness,
) -> None:
    """Seven P3/P4 cases arrive while delivery waits: one digest lists them all, then one card each."""
    h = harness
    await quick(h)
    dispatcher_lock = runner(h).lock
    case_ids = []
    async with dispatcher_lock:  # delivery is busy elsewhere while the burst arrives
        for index in range(7):
            _r, case_id = await file_report(h, LOW if index % 2 else LOWEST)
            case_ids.append(case_id)
    await deliver_alerts(CallbackContext(h.app))

    async def all_delivered() -> bool:
        texts = [m.get("text", "") for m in await h.sb.messages(h.group_id)]
        return all(any(t.endswith(f"Case {c}") or f"Case {c}\n" in t for t in texts) for c in case_ids)

    await h.sb.wait_until(all_delivered, timeout=30)
    texts = [m.get("text", "") for m in await h.sb.messages(h.group_id)]
    digests = [t for t in texts if "lower-priority cases arrived at the same time" in t]
    assert len(digests) == 1
    assert all(case_id in digests[0] for case_id in case_ids)
    first_card = next(i for i, t in enumerate(texts) if "· Case " in t)
    assert texts.index(digests[0]) < first_card, "the digest comes before the tickets"
    for case_id in case_ids:
        assert sum(1 for t in texts if f"· Case {case_id}\n" in t) == 1, "one card per case"
