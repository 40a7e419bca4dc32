"""After a report: /status (from any account with the code), /add, /delete, and /x at any point."""

from __future__ import annotations

from bot.domain.models import Condition, Priority, Reason
from bot.domain.records import OutboxKind
from bot.i18n import get_translator
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    QUICK,
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    code_in,
    new_reporter,
    outbox_rows,
    store,
    texts,
)
from tests.e2e.reporter import Reporter

EN = get_translator("en")
NO_MATCH = "No report matches this code. Check the digits and try again."
TOO_MANY = "Too many attempts. Please wait a few minutes and try again."
NO_NEWS = "No new messages from the team."


def _status_line(t_locale: str, case_id: str, state: str) -> str:
    t = get_translator(t_locale)
    return t.gettext("Report {case_id}: {state}").format(case_id=case_id, state=t.gettext(state))


async def _command(r: Reporter, text: str) -> tuple[int, dict]:
    """Send a command; return its message id and the bot's first reply."""
    sent = await r.sb.send_text(r.user_id, text, bot_id=r.bot_id)
    message_id = sent["message"]["message_id"]
    return message_id, await r.reply_after(message_id)


async def _gone(h: Harness, r: Reporter, message_id: int) -> None:
    async def deleted() -> bool:
        return message_id not in [m["message_id"] for m in await r.messages()]

    await h.sb.wait_until(deleted)


async def test_status_with_the_receipt_code_from_another_account_is_neutral(harness: Harness) -> None:
    """/status <code> from any account shows the neutral status, never the priority, and the code is
    deleted from that chat; wrong codes are refused, and after five the account must wait."""
    h = harness
    reporter = await new_reporter(h)
    plan = Plan(conditions=("violence", "locked_in"), contact="no")
    receipt = await Walk(reporter, plan).report()
    case = await case_by_receipt(h, receipt["text"])
    assert case.priority in (Priority.P1, Priority.P2)

    other = await new_reporter(h, "vi", "Friend")
    sent_id, reply = await _command(
        other, f"/status {' '.join(code_in(receipt['text'])[i : i + 4] for i in range(0, 16, 4))}"
    )
    vi = get_translator("vi")
    assert reply["text"] == "\n".join([_status_line("vi", case.case_id, "received"), vi.gettext(NO_NEWS)])
    # The random case id may itself contain "P4" and the like: look only at the rest of the text.
    shown = reply["text"].replace(case.case_id, "")
    for secret in [p.name for p in Priority] + [r.value for r in Reason] + ["priority", "Priority"]:
        assert secret not in shown
    await _gone(h, other, sent_id)

    # Wrong codes: refused, deleted; the sixth try is refused outright, even with the right code.
    guesser = await new_reporter(h, "en", "Guesser")
    for attempt in range(5):
        sent_id, reply = await _command(guesser, f"/status 1111 2222 3333 {4440 + attempt}")
        assert reply["text"] == NO_MATCH
        await _gone(h, guesser, sent_id)
    sent_id, reply = await _command(guesser, "/status 1111 2222 3333 4449")
    assert reply["text"] == TOO_MANY
    sent_id, reply = await _command(guesser, f"/status {code_in(receipt['text'])}")
    assert reply["text"] == TOO_MANY, "locked out even with the right code"
    await _gone(h, guesser, sent_id)

    # From the reporting account, /status without a code lists its case.
    _, reply = await _command(reporter, "/status")
    assert reply["text"] == "\n".join([_status_line("en", case.case_id, "received"), NO_NEWS])


async def test_add_appends_text_and_a_photo_to_the_case(harness: Harness) -> None:
    """/add, a text and a photo, Done: stored as an addition and media on the case, with an outbox row."""
    h = harness
    r = await new_reporter(h)
    receipt = await Walk(r, QUICK).report()
    case = await case_by_receipt(h, receipt["text"])
    assert case.media_count == 0
    assert case.additions == ()

    _, prompt = await _command(r, "/add")
    assert any(
        b["callback_data"] == "s:add:done" for row in prompt["reply_markup"]["inline_keyboard"] for b in row
    )
    noted = await r.send("They were moved to the building by the river.")
    assert noted["text"] == "Noted. Send more, or press Done."
    noted = await r.send_content(photo={})
    assert noted["text"] == "Noted. Send more, or press Done."
    mark = await r.last_id()
    await r.press(Step.ADD.value, "done", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Thank you. It was added to your report.")

    updated = await store(h).get_case(case.case_id)
    assert updated is not None
    assert updated.additions == ("They were moved to the building by the river.",)
    assert updated.media_count == 1
    assert (case.case_id, OutboxKind.CASE_UPDATE.value) in await outbox_rows(h)
    assert "They were moved to the building by the river." not in texts(await r.messages())


async def test_delete_withdraws_erases_and_unlinks_but_keeps_the_case(harness: Harness) -> None:
    """/delete, "No, keep it" changes nothing; confirming flags the case withdrawn, erases the free text
    and the victim's name, unlinks the reporter, and keeps the case with its conditions."""
    h = harness
    r = await new_reporter(h)
    plan = Plan(reporter_type="relative", victim=True, conditions=("locked_in", "debt_or_ransom"), photos=1)
    receipt = await Walk(r, plan).report()
    case = await case_by_receipt(h, receipt["text"])
    assert case.report.details
    assert case.report.victim.name

    _, question = await _command(r, "/delete")
    assert question["text"].startswith("Withdraw your report?")
    mark = await r.last_id()
    await r.press(Step.WITHDRAW.value, "no", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Nothing was changed.")
    kept = await store(h).get_case(case.case_id)
    assert kept == case

    await _command(r, "/delete")
    mark = await r.last_id()
    await r.press(Step.WITHDRAW.value, "yes", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Your report was withdrawn.")

    withdrawn = await store(h).get_case(case.case_id)
    assert withdrawn is not None
    assert withdrawn.withdrawn
    assert withdrawn.report.details is None
    assert withdrawn.report.place.details is None
    assert withdrawn.report.victim.name is None
    assert withdrawn.report.victim.passport_number is None
    assert withdrawn.media_count == 0
    assert withdrawn.report.conditions == frozenset({Condition.LOCKED_IN, Condition.DEBT_OR_RANSOM})
    assert withdrawn.priority == case.priority
    assert await case_ids(h) == [case.case_id]
    assert await store(h).cases_of(h.app.bot_data["beacon.intake"].intake.pseudonym(r.user_id)) == []
    assert await store(h).case_by_receipt(code_in(receipt["text"])) is None

    _, reply = await _command(r, "/status")
    assert reply["text"].startswith("There is no report from this account.")


async def test_exit_in_the_middle_leaves_the_chat_empty(harness: Harness) -> None:
    """/x in the middle of a report deletes every message on both sides; the next message gets the hint."""
    h = harness
    r = await new_reporter(h, "vi")
    walk = Walk(r, Plan(reporter_type="self", place_text="Near the river", country=None))
    await walk.begin()
    await walk.until(Step.PHONE)
    await r.send_content(sticker={"emoji": "🙂"})
    await r.send_content(photo={})
    assert len(await r.messages()) > 10

    await r.sb.send_text(r.user_id, "/x", bot_id=r.bot_id)

    async def empty() -> bool:
        return await r.messages() == []

    await h.sb.wait_until(empty)
    assert await case_ids(h) == []

    reply = await r.send("xin chào")
    vi = get_translator("vi")
    assert reply["text"] == vi.gettext("Send /start to begin a report, or /help to see what I can do.")


async def test_exit_after_an_unknown_command_leaves_the_chat_empty(harness: Harness) -> None:
    """/x also deletes an unknown command sent during the report, and the bot's answer to it."""
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, Plan())
    await walk.begin()
    await walk.until(Step.WHO)
    await r.send("/nonsense")
    await r.sb.send_text(r.user_id, "/x", bot_id=r.bot_id)
    await _wait_empty(h, r)


async def test_exit_after_a_burst_of_messages_leaves_the_chat_empty(harness: Harness) -> None:
    """/x also deletes messages sent in a burst faster than the bot reads them (over the flood guard)."""
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, Plan())
    await walk.begin()
    await walk.until(Step.DETAILS)
    for index in range(25):
        await r.sb.send_text(r.user_id, f"part {index} of a long story", bot_id=r.bot_id)
    await r.reply_after(0, lambda m: m.get("text", "").startswith("That is a lot of messages"))
    await r.sb.send_text(r.user_id, "/x", bot_id=r.bot_id)
    await _wait_empty(h, r)


async def _wait_empty(h: Harness, r: Reporter) -> None:
    async def empty() -> bool:
        return await r.messages() == []

    try:
        await h.sb.wait_until(empty, timeout=3.0)
    except TimeoutError:
        raise AssertionError(f"left in the chat after /x: {texts(await r.messages())}") from None
