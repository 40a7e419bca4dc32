"""The anonymous relay both ways: a coordinator's reply to a ticket card (or /reply ID text) reaches the
reporter through the bot in the reporter's language and as their contact preference allows, never naming
the coordinator; the reporter's follow-ups reach the case's topic as a notice, never forwarded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.app import get_database
from bot.i18n import Translator, get_translator
from handlers.intake.draft import Step
from tests.e2e.casework_flow import (
    grant,
    handled_so_far,
    member,
    open_case,
    quick,
    say,
    settled,
    the_card,
    thread_of,
)
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import LOCALES, Plan
from tests.e2e.reporter import Reporter
from tests.e2e.test_alert_delivery import ADDED, thread_texts

JSON = dict[str, Any]
SENT = "Sent to the reporter."
HELD = "Waiting: the reporter will see it the next time they open /status."
UNREACHABLE = "The reporter cannot be reached now; they will see it when they check in."
NO_CONTACT = "Not sent: the reporter asked not to be contacted."
WITHDRAWN = "Not sent: the reporter withdrew this report."
FRAME = "Message from the team:\n\n{text}"
NO_NEWS = "No new messages from the team."
# Who the coordinator is: none of it may reach a reporter.
CASEWORKER = {"first_name": "Zelda", "last_name": "Caseworkova", "username": "zelda_cw"}


def plan(contact: str) -> Plan:
    return Plan(conditions=("wages_withheld",), details=("They keep our wages.",), contact=contact)


async def caseworker(h: Harness) -> int:
    """A coordinator with a name and a username that must never reach a reporter."""
    await quick(h)
    user_id = await member(
        h, CASEWORKER["first_name"], last_name=CASEWORKER["last_name"], username=CASEWORKER["username"]
    )
    await grant(h, user_id, "coordinator")
    return user_id


async def reply_to_card(h: Harness, user_id: int, case_id: str, text: str) -> str:
    """The coordinator replies to the ticket card in the case's topic; return the bot's answer there."""
    card_id = (await the_card(h, case_id))["message_id"]
    reply = await say(h, user_id, text, thread_id=await thread_of(h, case_id), reply_to=card_id)
    return str(reply["text"])


async def reply_command(h: Harness, user_id: int, case_id: str, text: str) -> str:
    """/reply ID text, sent in the case's topic."""
    reply = await say(h, user_id, f"/reply {case_id} {text}", thread_id=await thread_of(h, case_id))
    return str(reply["text"])


async def texts_with(r: Reporter, marker: str) -> list[str]:
    """The bot's messages in the reporter's chat that contain `marker`."""
    return [str(m.get("text", "")) for m in await r.bot_messages() if marker in str(m.get("text", ""))]


def assert_anonymous(texts: list[str], coordinator_id: int) -> None:
    for text in texts:
        for identity in (*CASEWORKER.values(), str(coordinator_id)):
            assert identity not in text, f"the coordinator's {identity!r} reached the reporter"


async def check_in(r: Reporter, t: Translator) -> tuple[str, list[str]]:
    """The reporter sends /status; return the status message and the team's messages shown with it."""
    sent = await r.sb.send_text(r.user_id, "/status", bot_id=r.bot_id)
    sent_id = sent["message"]["message_id"]
    status = await r.reply_after(sent_id)
    # The handler sends the status, then each message held; a second command's answer comes after them.
    frame = t.gettext(FRAME).split("{text}")[0]
    mark = await r.send("/help", expect=lambda m: not str(m.get("text", "")).startswith(frame))
    shown = [
        str(m["text"])
        for m in await r.bot_messages()
        if sent_id < m["message_id"] < mark["message_id"] and str(m.get("text", "")).startswith(frame)
    ]
    return str(status["text"]), shown


def database_bytes(h: Harness) -> bytes:
    path = Path(h.settings.database)
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def held_rows(h: Harness, case_id: str) -> int:
    rows = await get_database(h.app).execute_fetchall(
        "SELECT COUNT(*) FROM reporter_messages WHERE case_id = ?", (case_id,)
    )
    ((count,),) = rows
    return int(count)


async def assert_encrypted_at_rest(h: Harness, case_id: str, marker: str) -> None:
    """The held message is stored (a row exists) but its words are nowhere in the database's bytes."""
    assert await held_rows(h, case_id) >= 1

    # From a connection of its own, without waiting inside SQLite (that would block the bot's event
    # loop, and with it the bot's own read that keeps the checkpoint busy): retry until it completes.
    for _ in range(100):
        with sqlite3.connect(h.settings.database, timeout=0) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy == 0:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the database could not be checkpointed")
    raw = database_bytes(h)
    assert raw, "no database file"
    assert marker.encode() not in raw, "a held message is stored in clear"


async def nothing_forwarded(h: Harness) -> None:
    assert await h.sb.calls("forwardMessage") == []
    assert await h.sb.calls("forwardMessages") == []


# --- coordinator → reporter --------------------------------------------------------------------------


@pytest.mark.parametrize("language_code", ["vi", "zh-hans"])
async def test_a_reply_reaches_a_reporter_who_allows_contact_at_once_in_their_language(
    harness: Harness, language_code: str
) -> None:
    """Contact "yes": a reply to the card and a /reply each arrive in the reporter's chat at once, framed in
    the reporter's language, without the coordinator's name, username or id; the coordinator is told
    "Sent to the reporter."; nothing is held and nothing is forwarded."""
    h = harness
    zelda = await caseworker(h)
    t = get_translator(LOCALES[language_code])
    r, case_id = await open_case(h, plan("yes"), language_code=language_code)

    assert await reply_to_card(h, zelda, case_id, "Zqone Are you safe now?") == SENT
    first = await r.sb.wait_for_message(
        r.user_id, bot_id=h.bot_id, predicate=lambda m: "Zqone" in m.get("text", ""), timeout=10
    )
    assert first["text"] == t.gettext(FRAME).format(text="Zqone Are you safe now?")
    assert first["text"] != FRAME.format(text="Zqone Are you safe now?"), "framed in English"
    assert await reply_command(h, zelda, case_id, "Zqtwo Call this number: 1234") == SENT
    second = await r.sb.wait_for_message(
        r.user_id, bot_id=h.bot_id, predicate=lambda m: "Zqtwo" in m.get("text", ""), timeout=10
    )
    assert second["text"] == t.gettext(FRAME).format(text="Zqtwo Call this number: 1234")

    texts = await texts_with(r, "Zq")
    assert len(texts) == 2, "each reply arrives once"
    assert_anonymous([str(m.get("text", "")) for m in await r.bot_messages()], zelda)
    assert await held_rows(h, case_id) == 0, "a delivered reply is not kept"
    status, shown = await check_in(r, t)
    assert t.gettext(NO_NEWS) in status
    assert shown == []
    await nothing_forwarded(h)


@pytest.mark.parametrize("language_code", ["vi", "zh-hans"])
async def test_a_reply_to_a_reporter_who_asked_to_check_in_is_held_for_status_once(
    harness: Harness, language_code: str
) -> None:
    """Contact "on check-in": replies are held (the coordinator is told), encrypted at rest, shown once on
    the reporter's next /status in their language and in order, then erased: a second /status shows
    none."""
    h = harness
    zelda = await caseworker(h)
    t = get_translator(LOCALES[language_code])
    r, case_id = await open_case(h, plan("on_check_in"), language_code=language_code)
    before = await r.bot_messages()

    assert await reply_to_card(h, zelda, case_id, "Zqheld first") == HELD
    assert await reply_command(h, zelda, case_id, "Zqheld second") == HELD
    assert await r.bot_messages() == before, "nothing reaches the reporter before they check in"
    assert await held_rows(h, case_id) == 2
    await assert_encrypted_at_rest(h, case_id, "Zqheld")

    status, shown = await check_in(r, t)
    assert t.gettext(NO_NEWS) not in status
    assert shown == [
        t.gettext(FRAME).format(text="Zqheld first"),
        t.gettext(FRAME).format(text="Zqheld second"),
    ]
    assert await held_rows(h, case_id) == 0, "erased once shown"
    status, shown = await check_in(r, t)
    assert t.gettext(NO_NEWS) in status
    assert shown == []
    assert_anonymous([str(m.get("text", "")) for m in await r.bot_messages()], zelda)
    await nothing_forwarded(h)


@pytest.mark.parametrize("language_code", ["vi", "zh-hans"])
async def test_a_reply_to_a_reporter_who_refused_contact_is_not_sent(
    harness: Harness, language_code: str
) -> None:
    """Contact "no": neither a reply to the card nor /reply is sent or held; the coordinator is told so."""
    h = harness
    zelda = await caseworker(h)
    t = get_translator(LOCALES[language_code])
    r, case_id = await open_case(h, plan("no"), language_code=language_code)
    before = await r.bot_messages()

    assert await reply_to_card(h, zelda, case_id, "Zqnever one") == NO_CONTACT
    assert await reply_command(h, zelda, case_id, "Zqnever two") == NO_CONTACT
    assert await r.bot_messages() == before
    assert await held_rows(h, case_id) == 0
    status, shown = await check_in(r, t)
    assert t.gettext(NO_NEWS) in status
    assert shown == []
    assert await texts_with(r, "Zqnever") == []


async def test_a_reply_to_a_withdrawn_report_is_not_sent(harness: Harness) -> None:
    """After the reporter withdrew (contact had been "yes"), replies are neither sent nor held, and the
    coordinator is told the report was withdrawn."""
    h = harness
    zelda = await caseworker(h)
    r, case_id = await open_case(h, plan("yes"), language_code="vi")
    await withdraw_in(r, get_translator("vi"))
    await settled(h, case_id)
    before = await r.bot_messages()

    assert await reply_to_card(h, zelda, case_id, "Zqgone one") == WITHDRAWN
    assert await reply_command(h, zelda, case_id, "Zqgone two") == WITHDRAWN
    assert await r.bot_messages() == before
    assert await held_rows(h, case_id) == 0


async def test_only_an_explicit_reply_to_the_card_is_relayed(harness: Harness) -> None:
    """Talk in a case's topic that does not reply to its card (a plain message, a reply to a colleague, a
    reply to the bot's own answer) stays among the team: nothing reaches the reporter, the bot says
    nothing."""
    h = harness
    zelda = await caseworker(h)
    r, case_id = await open_case(h, plan("yes"), language_code="zh-hans")
    thread = await thread_of(h, case_id)
    answer = await h.sb.send_text(zelda, "/reply", chat_id=h.group_id, message_thread_id=thread)
    usage = await h.sb.wait_for_message(
        h.group_id,
        after_message_id=answer["message"]["message_id"],
        predicate=lambda m: (
            (m.get("reply_to_message") or {}).get("message_id") == answer["message"]["message_id"]
        ),
    )
    assert usage["text"] == "Send /reply followed by the case id and your message."
    before_reporter = await r.bot_messages()
    before_group = [m["message_id"] for m in await h.sb.messages(h.group_id) if m["from"]["is_bot"]]

    plain = await h.sb.send_text(
        zelda, "Zqteam who takes this one?", chat_id=h.group_id, message_thread_id=thread
    )
    await h.sb.send_text(
        h.coordinator_id,
        "Zqteam I will",
        chat_id=h.group_id,
        message_thread_id=thread,
        reply_to_message_id=plain["message"]["message_id"],
    )
    await h.sb.send_text(
        zelda,
        "Zqteam thanks bot",
        chat_id=h.group_id,
        message_thread_id=thread,
        reply_to_message_id=usage["message_id"],
    )
    await handled_so_far(h, zelda)

    assert await r.bot_messages() == before_reporter
    said = [m for m in await h.sb.messages(h.group_id) if m["from"]["is_bot"]]
    new = [m["text"] for m in said if m["message_id"] not in before_group]
    assert new == ["This command is not available here."], "the bot answered the team's talk"


async def test_a_reporter_who_blocked_the_bot_gets_the_reply_on_their_next_status(harness: Harness) -> None:
    """Contact "yes" but the reporter blocked the bot: the coordinator is told they cannot be reached, the
    reply is held encrypted, and the reporter sees it once when they come back with /status."""
    h = harness
    zelda = await caseworker(h)
    t = get_translator("vi")
    r, case_id = await open_case(h, plan("yes"), language_code="vi")
    await h.sb.block_bot(r.user_id, h.bot_id)

    assert await reply_to_card(h, zelda, case_id, "Zqblocked please answer") == UNREACHABLE
    assert await held_rows(h, case_id) == 1
    await assert_encrypted_at_rest(h, case_id, "Zqblocked")
    assert await texts_with(r, "Zqblocked") == []

    # Writing to the bot again unblocks it (as Telegram's "Restart" does).
    status, shown = await check_in(r, t)
    assert shown == [t.gettext(FRAME).format(text="Zqblocked please answer")]
    assert await held_rows(h, case_id) == 0
    status, shown = await check_in(r, t)
    assert t.gettext(NO_NEWS) in status
    assert shown == []


# --- reporter → coordinators -------------------------------------------------------------------------


async def add_information_in(r: Reporter, t: Translator, text: str) -> None:
    """/add, one text and a photo, Done, in the reporter's language."""
    sent = await r.sb.send_text(r.user_id, "/add", bot_id=r.bot_id)
    await r.reply_after(sent["message"]["message_id"])
    await r.send(text)
    await r.send_content(photo={})
    mark = await r.last_id()
    await r.press(Step.ADD.value, "done", expect_next=False)
    thanks = t.gettext("Thank you. It was added to your report.")
    await r.reply_after(mark, lambda m: m.get("text") == thanks)


async def withdraw_in(r: Reporter, t: Translator) -> None:
    """/delete and confirm, in the reporter's language."""
    sent = await r.sb.send_text(r.user_id, "/delete", bot_id=r.bot_id)
    await r.reply_after(sent["message"]["message_id"])
    mark = await r.last_id()
    await r.press(Step.WITHDRAW.value, "yes", expect_next=False)
    done = t.gettext("Your report was withdrawn.")
    await r.reply_after(mark, lambda m: m.get("text") == done)


@pytest.mark.parametrize("language_code", ["vi", "zh-hans"])
async def test_a_reporters_follow_up_shows_a_notice_in_the_topic_and_is_never_forwarded(
    harness: Harness, language_code: str
) -> None:
    """/add posts "The reporter added information" in the case's topic (in the coordinators' language),
    the card is refreshed in place, and no group message is a forward or carries the reporter's words,
    photo or account."""
    h = harness
    await quick(h)
    t = get_translator(LOCALES[language_code])
    r, case_id = await open_case(
        h, plan("yes"), language_code=language_code, first_name="Quynh", username="quynh_reports"
    )
    card = await the_card(h, case_id)
    await add_information_in(r, t, "Zqadded they moved us to a new building")
    await settled(h, case_id)

    thread = await thread_of(h, case_id)
    assert (await thread_texts(h.sb, h.group_id, thread))[1:] == [ADDED]
    assert (await the_card(h, case_id))["message_id"] == card["message_id"]
    group = await h.sb.messages(h.group_id)
    for message in group:
        for field in ("forward_origin", "forward_from", "forward_from_chat", "forward_date"):
            assert field not in message, f"a forwarded message in the group: {message}"
        assert "photo" not in message, "the reporter's photo was posted to the group"
    seen = "\n".join(str(m.get("text", "")) for m in group)
    for secret in ("Zqadded", "Quynh", "quynh_reports", str(r.user_id)):
        assert secret not in seen, f"{secret!r} reached the group"
    await nothing_forwarded(h)

    # The withdrawal, too, is a notice in the topic, in the coordinators' language.
    await withdraw_in(r, t)
    await settled(h, case_id)
    assert (await thread_texts(h.sb, h.group_id, thread))[-1].startswith("The reporter withdrew this report.")
    await nothing_forwarded(h)


async def test_a_photo_replied_to_the_card_reaches_the_reporter(harness: Harness) -> None:
    """A photo with a caption, replied to the card, reaches a reporter who allows contact (re-sent, not
    forwarded) and the coordinator is told "Sent to the reporter."."""
    h = harness
    zelda = await caseworker(h)
    r, case_id = await open_case(h, plan("yes"), language_code="vi")
    card = await the_card(h, case_id)
    sent = await h.sb.send(
        zelda,
        chat_id=h.group_id,
        message_thread_id=await thread_of(h, case_id),
        reply_to_message_id=card["message_id"],
        photo={"caption": "Zqphoto is this the building?"},
    )
    sent_id = sent["message"]["message_id"]
    await handled_so_far(h, zelda)
    answers = [
        m.get("text")
        for m in await h.sb.messages(h.group_id)
        if m["from"]["is_bot"] and (m.get("reply_to_message") or {}).get("message_id") == sent_id
    ]
    photos = [m for m in await r.bot_messages() if "photo" in m]
    assert (answers, len(photos)) == ([SENT], 1)
    await nothing_forwarded(h)


async def test_a_photo_held_for_check_in_is_shown_sanitised_at_the_next_status(harness: Harness) -> None:
    """Contact "on check-in": a photo replied to the card is held (encrypted) and shown, with its caption,
    when the reporter next sends /status; then it is erased."""
    h = harness
    zelda = await caseworker(h)
    r, case_id = await open_case(h, plan("on_check_in"), language_code="vi")
    card = await the_card(h, case_id)
    await h.sb.send(
        zelda,
        chat_id=h.group_id,
        message_thread_id=await thread_of(h, case_id),
        reply_to_message_id=card["message_id"],
        photo={"caption": "Zqheldphoto is this the building?"},
    )
    await handled_so_far(h, zelda)
    assert await held_rows(h, case_id) == 1
    await assert_encrypted_at_rest(h, case_id, "Zqheldphoto")
    sent = await r.sb.send_text(r.user_id, "/status", bot_id=r.bot_id)
    photo = await r.sb.wait_for_message(
        r.user_id,
        bot_id=r.bot_id,
        after_message_id=sent["message"]["message_id"],
        predicate=lambda m: "photo" in m,
    )
    assert "Zqheldphoto is this the building?" in photo["caption"]
    image = await h.sb.file_bytes(photo["photo"][-1]["file_id"])
    assert image.startswith(b"\xff\xd8"), "re-encoded as JPEG (metadata stripped)"
    assert await held_rows(h, case_id) == 0
