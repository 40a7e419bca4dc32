"""The danger fast track: where and one line, submitted at once at top priority; the rest may follow."""

from __future__ import annotations

from bot.domain.models import Priority
from bot.i18n import get_translator
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    CODE,
    GAZETTEER,
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    new_reporter,
    outbox_rows,
    store,
)
from tests.e2e.reporter import Reporter

# A point in Sen Sok, a few hundred metres from the gazetteer's centre of the area.
SEN_SOK = (11.5925, 104.8671)
ONE_LINE = "They are beating two men in building B right now"


async def _fast_track(h: Harness, r: Reporter, locale: str = "en") -> tuple[dict, dict]:
    """/start, danger yes, share a location, one line; return (receipt, "answer more?" question)."""
    walk = Walk(r, Plan(danger="yes"))
    await walk.begin()
    mark = await r.last_id()
    await r.press(Step.DANGER.value, "yes", expect_next=False)
    where = await r.reply_after(mark)
    transcript = await h.sb.transcript(r.user_id, bot_id=h.bot_id)
    assert transcript["keyboard"] is not None, "a location button is offered"
    assert any(b.get("request_location") for row in transcript["keyboard"]["keyboard"] for b in row)
    assert not (where.get("reply_markup") or {}).get("inline_keyboard")
    mark = await r.last_id()
    await r.send_content(location={"latitude": SEN_SOK[0], "longitude": SEN_SOK[1]})
    one_line = get_translator(locale).gettext("In one line: what is happening?")
    await r.reply_after(mark, lambda m: m.get("text") == one_line)
    mark = await r.last_id()
    await r.send(ONE_LINE)
    receipt = await r.reply_after(mark, lambda m: bool(CODE.search(m.get("text", ""))))
    more = await r.question_after(Step.FAST_MORE.value, mark)
    return receipt, more


async def test_danger_fast_track_submits_at_once_with_top_priority(harness: Harness) -> None:
    """Danger now + a shared location + one line is stored at once as P1 in the nearest gazetteer area."""
    h = harness
    r = await new_reporter(h)
    receipt, _ = await _fast_track(h, r)
    case = await case_by_receipt(h, receipt["text"])
    nearest = GAZETTEER.nearest_area(*SEN_SOK)
    assert nearest is not None
    assert case.report.immediate_danger is True
    assert case.report.fast_track is True
    assert case.priority is Priority.P1
    assert case.report.place.area_id == nearest.id == "kh-sen-sok"
    assert case.report.place.country == "KH"
    assert (case.report.place.latitude, case.report.place.longitude) == SEN_SOK
    assert case.report.details == ONE_LINE
    assert await case_ids(h) == [case.case_id]


async def test_continuing_after_the_fast_track_amends_the_same_case(harness: Harness) -> None:
    """ "Continue" asks the remaining questions and the final submit updates the same case, not a new one."""
    h = harness
    r = await new_reporter(h)
    receipt, _ = await _fast_track(h, r)
    first = await case_by_receipt(h, receipt["text"])
    assert first.report.conditions == frozenset()

    plan = Plan(
        danger="yes",
        reporter_type="relative",
        country=None,  # the shared location stays the place
        place_text="Next to the big water tower",
        conditions=("locked_in", "violence", "threats"),
        details=("My brother sent a voice note at night.",),
        voices=1,
        contact="yes",
    )
    walk = Walk(r, plan)
    mark = await r.last_id()
    await r.press(Step.FAST_MORE.value, "continue", expect_next=False)
    walk.questions["who"] = await r.question_after(Step.WHO.value, mark)
    await walk.to_review(start=Step.WHO)
    review = walk.questions["review"]["text"]
    assert "Danger now" in review
    mark = await r.last_id()
    await r.press(Step.REVIEW.value, "submit", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Thank you. Your report was updated.")

    assert await case_ids(h) == [first.case_id], "no second case"
    amended = await store(h).get_case(first.case_id)
    assert amended is not None
    assert {c.value for c in amended.report.conditions} == set(plan.conditions)
    assert amended.report.immediate_danger is True
    assert amended.priority is Priority.P1
    assert amended.report.place.area_id == "kh-sen-sok"
    assert amended.report.place.details == plan.place_text
    assert amended.report.details == f"{ONE_LINE}\n\n{plan.details[0]}"
    assert amended.media_count == 1
    assert await outbox_rows(h) == [
        (first.case_id, "new_case"),
        (first.case_id, "case_update"),
    ]
    # The receipt stays for the reporter to write down; the rest of the chat is wiped.
    remaining = [m["message_id"] for m in await r.messages()]
    assert remaining[0] == receipt["message_id"]
    assert len(remaining) == 2


async def test_not_now_after_the_fast_track_ends_the_conversation(harness: Harness) -> None:
    """ "Not now" ends the conversation: the fast-tracked case stays as it was and nothing else is asked."""
    h = harness
    r = await new_reporter(h, "vi")
    receipt, _ = await _fast_track(h, r, "vi")
    mark = await r.last_id()
    await r.press(Step.FAST_MORE.value, "stop", expect_next=False)
    t = get_translator("vi")
    await r.reply_after(
        mark, lambda m: m.get("text") == t.gettext("Thank you. Send /add at any time to tell us more.")
    )
    reply = await r.send("hello")
    assert reply["text"] == t.gettext("Send /start to begin a report, or /help to see what I can do.")
    case = await case_by_receipt(h, receipt["text"])
    assert case.report.conditions == frozenset()
    assert case.report.reporter_type is None
    assert await case_ids(h) == [case.case_id]
