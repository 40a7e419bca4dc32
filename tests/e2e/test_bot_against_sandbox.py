"""The real Beacon Application, polling the sandbox over HTTP, answers people as designed."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import get_translator
from tests.e2e.conftest import Harness

GREETING_START = "Hello. This is Beacon."
NOT_UNDERSTOOD = "I did not understand that. Send /start to begin."


def _msgid_starting(prefix: str) -> str:
    """The catalog's msgid that begins with `prefix` (the greeting is one long message)."""
    with (Path(__file__).parents[2] / "locales" / "beacon.pot").open("rb") as template:
        ids = [m.id for m in read_po(template) if isinstance(m.id, str) and m.id.startswith(prefix)]
    assert len(ids) == 1
    return ids[0]


def _translated(locale: str, msgid: str) -> str:
    return get_translator(locale).gettext(msgid)


async def _last_bot_text(h: Harness, user_id: int, after: int) -> str:
    message = await h.sb.wait_for_message(user_id, bot_id=h.bot_id, after_message_id=after)
    return str(message.get("text", ""))


@pytest.mark.parametrize("language_code", ["en", "vi", "zh-hans", "zh-CN"])
async def test_start_is_answered_in_the_reporters_language(harness: Harness, language_code: str) -> None:
    """/start in a private chat gets the greeting in the language Telegram reports for the user."""
    user = await harness.sb.create_user("Reporter", language_code=language_code)
    sent = await harness.sb.send_text(user["id"], "/start", bot_id=harness.bot_id)
    text = await _last_bot_text(harness, user["id"], sent["message"]["message_id"])
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
        {"contact": {"phone_number": "+10000000000", "first_name": "Someone"}},
        {"text": "/definitely_not_a_command"},
        {"text": "<b>bold</b> & *stars* _under_ [link](http://x)"},
        {"text": "x" * 4096},
    ],
    ids=["sticker", "voice", "photo", "location", "contact", "unknown-command", "markup-injection", "long"],
)
async def test_unexpected_input_in_private_gets_a_translated_hint(harness: Harness, content: dict) -> None:
    """Anything the bot cannot use yet is answered with a short translated hint, never silence."""
    user = await harness.sb.create_user("Reporter", language_code="vi")
    sent = await harness.sb.send(user["id"], bot_id=harness.bot_id, **content)
    text = await _last_bot_text(harness, user["id"], sent["message"]["message_id"])
    assert text == _translated("vi", NOT_UNDERSTOOD)


async def test_group_chatter_is_ignored_but_addressed_commands_are_answered(harness: Harness) -> None:
    """In the coordinators' group the bot stays silent unless a command names it."""
    h = harness
    sent = await h.sb.send_text(h.coordinator_id, "hello everyone", chat_id=h.group_id)
    await h.sb.send_text(h.coordinator_id, "/start", chat_id=h.group_id)
    named = await h.sb.send_text(h.coordinator_id, "/nonsense@beacon_test_bot", chat_id=h.group_id)
    reply = await h.sb.wait_for_message(h.group_id, after_message_id=named["message"]["message_id"])
    assert reply["text"] == _translated("en", "This command is not available here.")
    bot_messages = [
        m
        for m in await h.sb.messages(h.group_id)
        if m["from"]["is_bot"] and m["message_id"] > sent["message"]["message_id"]
    ]
    assert len(bot_messages) == 1, "only the command addressed to the bot is answered"


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
    text = await _last_bot_text(h, user["id"], sent["message"]["message_id"])
    assert text.startswith(GREETING_START)
    outcomes = [
        c["ok"] for c in await h.sb.calls("sendMessage", bot_id=h.bot_id) if c["chat_id"] == str(user["id"])
    ]
    assert outcomes == [False, True]


async def test_bot_keeps_serving_after_a_server_error(harness: Harness) -> None:
    """A 500 on one reply is logged, not fatal: the next message is answered normally."""
    h = harness
    user = await h.sb.create_user("Reporter", language_code="en")
    await h.sb.inject_fault("sendMessage", "server_error", count=1, chat_id=user["id"])
    first = await h.sb.send_text(user["id"], "/start", bot_id=h.bot_id)

    async def failed_once() -> bool:
        calls = await h.sb.calls("sendMessage", bot_id=h.bot_id)
        return any(c["chat_id"] == str(user["id"]) and not c["ok"] for c in calls)

    await h.sb.wait_until(failed_once)
    second = await h.sb.send_text(user["id"], "/start", bot_id=h.bot_id)
    assert second["message"]["message_id"] > first["message"]["message_id"]
    text = await _last_bot_text(h, user["id"], second["message"]["message_id"])
    assert text.startswith(GREETING_START)
