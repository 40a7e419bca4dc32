"""The real Beacon Application, polling the sandbox over HTTP, answers people as designed."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import get_translator
from tests.e2e.conftest import Harness

GREETING_START = "Hello. You can tell us here"
NOT_UNDERSTOOD = "Send /start to begin a report, or /help to see what I can do."


def _msgid_starting(prefix: str) -> str:
    """The catalog's msgid that begins with `prefix` (the greeting is one long message)."""
    with (Path(__file__).parents[2] / "locales" / "beacon.pot").open("rb") as template:
        ids = [m.id for m in read_po(template) if isinstance(m.id, str) and m.id.startswith(prefix)]
    assert len(ids) == 1
    return ids[0]


def _translated(locale: str, msgid: str) -> str:
    return get_translator(locale).gettext(msgid)


async def _first_bot_text(h: Harness, user_id: int, after: int) -> str:
    """The first bot message after `after` (the notice, when a danger question follows it)."""
    message = await h.sb.wait_for_message(user_id, bot_id=h.bot_id, after_message_id=after)
    return str(message.get("text", ""))


async def _last_bot_text(h: Harness, user_id: int, after: int) -> str:
    message = await h.sb.wait_for_message(user_id, bot_id=h.bot_id, after_message_id=after)
    return str(message.get("text", ""))


@pytest.mark.parametrize("language_code", ["en", "vi", "zh-hans", "zh-CN"])
async def test_start_is_answered_in_the_reporters_language(harness: Harness, language_code: str) -> None:
    """/start in a private chat gets the greeting in the language Telegram reports for the user."""
    user = await harness.sb.create_user("Reporter", language_code=language_code)
    sent = await harness.sb.send_text(user["id"], "/start", bot_id=harness.bot_id)
    text = await _first_bot_text(harness, user["id"], sent["message"]["message_id"])
    locale = {"en": "en", "vi": "vi", "zh-hans": "zh_Hans", "zh-CN": "zh_Hans"}[language_code]
    assert text == _translated(locale, _msgid_starting(GREETING_START))
    if locale != "en":
        assert "Hello" not in text, "a non-English reporter must not get the English greeting"


async def test_unknown_language_falls_back_to_the_default_locale(harness: Harness) -> None:
    """A reporter whose language is not shipped gets the default (English) greeting."""
    user = await harness.sb.create_user("Reporter", language_code="xx")
    sent = await harness.sb.send_text(user["id"], "/start", bot_id=harness.bot_id)
    assert (await _last_bot_text(harness, user["id"], sent["message"]["message_id"])).startswith(
        GREETING_START
    )


@pytest.mark.parametrize(
    "content",
    [
        {"sticker": {"emoji": "😀"}},
        {"voice": {"duration": 3}},
        {"photo": {}},
        {"location": {"latitude": 11.59, "longitude": 104.88}},
        {"text": "<b>bold</b> & *stars* _under_ [link](http://x)"},
        {"text": "x" * 4096},
    ],
    ids=["sticker", "voice", "photo", "location", "markup-injection", "long"],
)
async def test_input_outside_a_report_gets_a_translated_hint(harness: Harness, content: dict) -> None:
    """Anything sent before a report is started is answered with a short translated hint, never silence."""
    user = await harness.sb.create_user("Reporter", language_code="vi")
    sent = await harness.sb.send(user["id"], bot_id=harness.bot_id, **content)
    reply = await harness.sb.wait_for_message(
        user["id"], bot_id=harness.bot_id, after_message_id=sent["message"]["message_id"]
    )
    assert reply["text"] == _translated("vi", NOT_UNDERSTOOD)


async def test_a_shared_contact_is_removed_and_its_number_not_kept(harness: Harness) -> None:
    """A shared contact is deleted from the chat at once and the reporter is told the number was not saved."""
    user = await harness.sb.create_user("Reporter", language_code="en")
    sent = await harness.sb.send_contact(user["id"], "+10000000000", "Someone", bot_id=harness.bot_id)
    reply = await harness.sb.wait_for_message(
        user["id"], bot_id=harness.bot_id, after_message_id=sent["message"]["message_id"]
    )
    assert reply["text"] == "Thank you, but we do not need a phone number. It was not saved."
    remaining = [m["message_id"] for m in await harness.sb.messages(user["id"], bot_id=harness.bot_id)]
    assert sent["message"]["message_id"] not in remaining


async def test_group_chatter_is_ignored_and_start_there_is_sent_private_once(harness: Harness) -> None:
    """In a group: chatter gets no answer, /start is pointed to a private chat once, and an
    unknown command naming the bot gets a short refusal."""
    h = harness
    sent = await h.sb.send_text(h.coordinator_id, "hello everyone", chat_id=h.group_id)
    first = await h.sb.send_text(h.coordinator_id, "/start", chat_id=h.group_id)
    pointer = await h.sb.wait_for_message(h.group_id, after_message_id=first["message"]["message_id"])
    assert pointer["text"] == "Please write to me in a private chat: https://t.me/beacon_test_bot"
    await h.sb.send_text(h.coordinator_id, "/start", chat_id=h.group_id)
    named = await h.sb.send_text(h.coordinator_id, "/nonsense@beacon_test_bot", chat_id=h.group_id)
    reply = await h.sb.wait_for_message(h.group_id, after_message_id=named["message"]["message_id"])
    assert reply["text"] == _translated("en", "This command is not available here.")
    bot_messages = [
        m
        for m in await h.sb.messages(h.group_id)
        if m["from"]["is_bot"] and m["message_id"] > sent["message"]["message_id"]
    ]
    assert len(bot_messages) == 2, "chatter and the repeated /start get no answer"


async def test_bot_publishes_its_command_menu(harness: Harness) -> None:
    """At start-up the bot publishes a private-chat command menu (setMyCommands succeeded)."""
    calls = await harness.sb.calls("setMyCommands", bot_id=harness.bot_id)
    assert calls
    assert all(call["ok"] for call in calls)


async def test_bot_rides_out_a_rate_limit_on_its_reply(harness: Harness) -> None:
    """A 429 with retry_after on the reply is waited out and the reply still arrives."""
    h = harness
    user = await h.sb.create_user("Reporter", language_code="en")
    await h.sb.inject_fault("sendMessage", "retry_after", count=1, retry_after=1, chat_id=user["id"])
    sent = await h.sb.send_text(user["id"], "/start", bot_id=h.bot_id)
    text = await _first_bot_text(h, user["id"], sent["message"]["message_id"])
    assert text.startswith(GREETING_START)
    outcomes = [
        c["ok"]
        for c in await h.sb.calls("sendMessage", bot_id=h.bot_id)
        if str(c["chat_id"]) == str(user["id"])
    ]
    assert outcomes[0] is False, "the injected 429"
    assert outcomes[1:] == [True, True], "the notice (retried) and the first question"


async def test_bot_keeps_serving_after_a_server_error(harness: Harness) -> None:
    """A 500 on one reply is logged, not fatal: the next message is answered normally."""
    h = harness
    user = await h.sb.create_user("Reporter", language_code="en")
    await h.sb.inject_fault("sendMessage", "server_error", count=1, chat_id=user["id"])
    first = await h.sb.send_text(user["id"], "/start", bot_id=h.bot_id)

    async def failed_once() -> bool:
        calls = await h.sb.calls("sendMessage", bot_id=h.bot_id)
        return any(str(c["chat_id"]) == str(user["id"]) and not c["ok"] for c in calls)

    await h.sb.wait_until(failed_once)
    second = await h.sb.send_text(user["id"], "/start", bot_id=h.bot_id)
    assert second["message"]["message_id"] > first["message"]["message_id"]
    text = await _first_bot_text(h, user["id"], second["message"]["message_id"])
    assert text.startswith(GREETING_START)
