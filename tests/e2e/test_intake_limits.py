"""Per-reporter limits: reports over the hourly limit are quarantined, and the reporter cannot tell."""

from __future__ import annotations

import re

from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import QUICK, Walk, case_by_receipt, case_ids, new_reporter, texts
from tests.e2e.reporter import Reporter

DIGITS = re.compile(r"\d")


async def _report_as_seen(h: Harness, r: Reporter) -> tuple[list[str], dict]:
    """File a quick report; return what the bot showed up to the receipt (digits masked) and the receipt."""
    walk = Walk(r, QUICK)
    await walk.begin()
    await walk.to_review()
    conversation = [
        m
        for m in await h.sb.messages(r.user_id, bot_id=h.bot_id)
        if m["message_id"] > walk.start_message_id and m["from"]["is_bot"]
    ]
    receipt = await walk.submit()

    async def settled() -> list[dict] | None:
        shown = [m for m in await r.messages() if m["message_id"] >= walk.start_message_id]
        return shown if [m["message_id"] for m in shown] == [receipt["message_id"]] else None

    try:
        await h.sb.wait_until(settled)
    except TimeoutError:
        left = [(m["message_id"], m.get("text")) for m in await r.messages()]
        raise AssertionError(f"not wiped down to the receipt {receipt['message_id']}: {left}") from None
    seen = [DIGITS.sub("#", text) for text in [*texts(conversation), receipt["text"]]]
    # Clear the receipt, so the next report starts from one neutral line.
    await r.press(Step.RECEIPT.value, "clear", expect_next=False)
    await r.reply_after(receipt["message_id"], lambda m: m.get("text") == "Thank you.")
    return seen, receipt


async def test_the_sixth_report_in_an_hour_is_quarantined_but_looks_the_same(harness: Harness) -> None:
    """Six reports in an hour from one account: the sixth is quarantined for review, and every answer the
    reporter sees (questions, receipt) has exactly the same shape as for the first."""
    h = harness
    assert h.settings.reports_per_hour == 5
    r = await new_reporter(h)
    receipts = []
    seen_first: list[str] = []
    for _index in range(5):
        seen, receipt = await _report_as_seen(h, r)
        seen_first = seen_first or seen
        assert seen == seen_first
        receipts.append(receipt)
    # The sixth at Telegram's real pace (1 message a second per chat): the bot rides out the 429s.
    await h.sb.set_limits(enabled=True)
    seen_sixth, sixth = await _report_as_seen(h, r)

    assert seen_sixth == seen_first, "the reporter cannot tell a quarantined report"
    assert DIGITS.sub("#", sixth["text"]) == DIGITS.sub("#", receipts[0]["text"])
    assert sixth.get("reply_markup") == receipts[0].get("reply_markup")
    for receipt in receipts:
        assert not (await case_by_receipt(h, receipt["text"])).quarantined
    quarantined = await case_by_receipt(h, sixth["text"])
    assert quarantined.quarantined
    assert len(await case_ids(h)) == 6
