"""Every kind of unexpected input, at several steps: a short translated reply, the step unchanged, and the
report still completes; nothing a reporter types is ever turned into markup or lost."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.i18n import get_translator
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    new_reporter,
    step_of,
    texts,
)
from tests.e2e.reporter import Reporter

VI = get_translator("vi")
META = "<b>x</b> *y* _z_ [l](http://e) `code` &amp; <i>"
RTL = "abc \u202eevil\u202c zero\u200bwidth\u200d join \u2066isolated\u2069 \u200fend"
LONG = ("A long account of what happened, line after line; 长文 — " * 100)[:4084] + " END-OF-LONG"
PHONE = "+15550001234"
BUTTONS_HINT = "Please use the buttons above to answer. Send /x to stop."
TEXT_HINT = "Please type your answer, or use the buttons above. Send /x to stop."
MEDIA_HINT = "Please send text, photos or voice notes, then press Done."
NOTED = "Noted. Send more, or press Done."
INACTIVE = "This button is no longer active."
# The question answered just before each step, whose buttons are then stale.
PREVIOUS: dict[Step, tuple[Step, str]] = {
    Step.WHO: (Step.DANGER, "yes"),
    Step.WHERE: (Step.VICTIM_ASK, "yes"),
    Step.CONDITIONS: (Step.PHONE, "taken"),
    Step.DETAILS: (Step.NATIONALITIES, "TH"),
    Step.REVIEW: (Step.CONTACT, "yes"),
}
PLAN = Plan(
    reporter_type="relative",
    place_text=None,
    passport="taken",
    phone="kept",
    conditions=("locked_in",),
    people="6-20",
    nationalities=("VN",),
    details=(),
    contact="on_check_in",
)


def _hint(step: Step) -> str:
    if step is Step.DETAILS:
        return VI.gettext(MEDIA_HINT)
    if step is Step.WHERE:
        return VI.gettext(TEXT_HINT)
    return VI.gettext(BUTTONS_HINT)


async def _expect_reply(r: Reporter, sent: dict, text: str) -> None:
    reply = await r.reply_after(sent["message"]["message_id"])
    assert reply["text"] == text
    assert len(reply["text"]) < 200, "a short reply"


def _database_bytes(h: Harness) -> bytes:
    db = Path(h.settings.database)
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


@pytest.mark.parametrize(
    "step",
    [Step.DANGER, Step.WHO, Step.WHERE, Step.CONDITIONS, Step.DETAILS, Step.REVIEW],
    ids=lambda s: s.value,
)
async def test_unexpected_input_gets_a_translated_reply_and_keeps_the_step(
    harness: Harness, step: Step, caplog: pytest.LogCaptureFixture
) -> None:
    """Sticker, voice, huge, markup-like, RTL/zero-width text, a contact, forged and stale buttons, an
    unknown command and an edit each get a short Vietnamese reply; the step stays; the report completes."""
    caplog.set_level(logging.WARNING)
    h = harness
    r = await new_reporter(h, "vi")
    walk = Walk(r, PLAN)
    await walk.begin()
    await walk.until(step)
    question = await r.question(step.value)
    uid, bot = r.user_id, h.bot_id

    async def stays() -> None:
        assert await step_of(h, r) == step.value
        assert await case_ids(h) == []

    sent = await h.sb.send(uid, bot_id=bot, sticker={"emoji": "😀"})
    await _expect_reply(r, sent, _hint(step))
    await stays()

    if step is not Step.DETAILS:  # a voice note is an answer there
        sent = await h.sb.send(uid, bot_id=bot, voice={"duration": 2})
        await _expect_reply(r, sent, _hint(step))
        await stays()

    if step is not Step.WHERE:  # typed text names the place there
        for text in (META, RTL, LONG):
            sent = await h.sb.send_text(uid, text, bot_id=bot)
            await _expect_reply(r, sent, VI.gettext(NOTED) if step is Step.DETAILS else _hint(step))
            await stays()

    sent = await h.sb.send(uid, bot_id=bot, contact={"phone_number": PHONE, "first_name": "Boss"})
    await _expect_reply(
        r, sent, VI.gettext("Thank you, but we do not need a phone number. It was not saved.")
    )
    assert sent["message"]["message_id"] not in [m["message_id"] for m in await r.messages()]
    await stays()

    forged_data = "s:danger:yes" if step is Step.REVIEW else "s:review:submit"
    pressed = await h.sb.press_button(uid, question["message_id"], data=forged_data, forge=True, bot_id=bot)
    assert (await r.answer_of(pressed))["text"] == VI.gettext(INACTIVE)
    await stays()

    if step in PREVIOUS:
        earlier, value = PREVIOUS[step]
        stale = walk.questions[earlier.value]
        # Answered questions lose their buttons; a client that has not redrawn yet can still press them.
        data = f"s:{earlier.value}:{value}"
        pressed = await h.sb.press_button(uid, stale["message_id"], data=data, forge=True, bot_id=bot)
        assert (await r.answer_of(pressed))["text"] == VI.gettext(INACTIVE)
        await stays()

    sent = await h.sb.send_text(uid, "/nonsense", bot_id=bot)
    await _expect_reply(
        r,
        sent,
        VI.gettext(
            "I do not know this command. Your answers are kept: answer the question above, or send /help."
        ),
    )
    await stays()

    mark = await r.last_id()
    await h.sb.edit_message(uid, walk.start_message_id, "<b>changed</b> my mind", bot_id=bot)
    reply = await r.reply_after(mark)
    assert reply["text"] == VI.gettext("Edits are not read. Please send the corrected text as a new message.")
    await stays()

    # The same question still works, and the report completes.
    if step is not Step.REVIEW:
        await walk.until(Step.REVIEW, start=step)
    review = await r.question(Step.REVIEW.value)
    receipt = await walk.submit()
    case = await case_by_receipt(h, receipt["text"])
    assert await case_ids(h) == [case.case_id]
    assert {c.value for c in case.report.conditions} == set(PLAN.conditions)
    if step is Step.DETAILS:
        assert case.report.details == "\n\n".join([META, RTL, LONG]), "kept whole and verbatim"
        assert META in review["text"], "shown verbatim in the review"
        kinds = {e["type"] for e in review.get("entities", [])}
        assert not kinds & {"bold", "italic", "text_link", "code", "pre"}, "never parsed as markup"
    else:
        assert case.report.details is None, "nothing sent at a button step is stored"
    assert case.report.place.details is None
    assert PHONE.encode() not in _database_bytes(h)
    assert PHONE[1:].encode() not in _database_bytes(h)

    bot_texts = texts(await h.sb.messages(uid, bot_id=bot))
    assert not any("Something went wrong" in text for text in bot_texts)
    failures = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert failures == [], [rec.getMessage() for rec in failures]


async def test_an_unknown_command_in_a_report_is_wiped_with_the_rest(harness: Harness) -> None:
    """An unknown command sent in the middle of a report, and its reply, are deleted with the conversation."""
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, PLAN)
    await walk.begin()
    await walk.until(Step.WHO)
    await r.send("/nonsense")
    await walk.until(Step.REVIEW, start=Step.WHO)
    receipt = await walk.submit()

    async def only_receipt() -> bool:
        return [m["message_id"] for m in await r.messages()] == [receipt["message_id"]]

    try:
        await h.sb.wait_until(only_receipt, timeout=3.0)
    except TimeoutError:
        left = texts(await r.messages())
        raise AssertionError(f"left in the chat after submission: {left}") from None
