"""A burst of lower-priority reports is announced in one digest at once; each ticket still follows, once."""

from __future__ import annotations

from telegram.ext import CallbackContext

from handlers.coordinators.delivery import deliver_alerts
from tests.e2e.casework_flow import quick, runner
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import case_by_receipt, fast_track, new_reporter
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


async def test_a_p1_waiting_in_a_burst_is_ticketed_before_the_digest(harness: Harness) -> None:
    """A digest never takes the slot of an urgent case: the P1 that came with the burst is carded first."""
    h = harness
    await quick(h)
    async with runner(h).lock:  # delivery is busy elsewhere while the burst and the P1 arrive
        for index in range(7):
            await file_report(h, LOW if index % 2 else LOWEST)
        receipt = await fast_track(await new_reporter(h), "Two men are being beaten right now")
        urgent = (await case_by_receipt(h, receipt["text"])).case_id
    await deliver_alerts(CallbackContext(h.app))

    async def digest_posted() -> bool:
        texts = [m.get("text", "") for m in await h.sb.messages(h.group_id)]
        return any("lower-priority cases arrived at the same time" in t for t in texts)

    await h.sb.wait_until(digest_posted, timeout=30)
    texts = [m.get("text", "") for m in await h.sb.messages(h.group_id)]
    urgent_card = next(i for i, t in enumerate(texts) if f"· Case {urgent}\n" in t)
    digest = next(i for i, t in enumerate(texts) if "lower-priority cases arrived at the same time" in t)
    assert urgent_card < digest, "the P1's card comes before the digest"
