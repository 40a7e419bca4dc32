"""Handlers: greeting, fallbacks and the error handler, driven with real Updates and a fake bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from telegram import Update
from telegram.error import Forbidden

from handlers.errors import describe_failure, on_error
from handlers.fallback import addressed_command, group_command, not_understood

BOT_USERNAME = "beacon_bot"
PRIVATE_TEXT = "My name is Alice Nguyen and I am in building 5"


class FakeBot:
    """Records what the handlers send, like a phone screen; optionally fails every send."""

    username = BOT_USERNAME
    defaults = None

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_with = fail_with

    async def send_message(self, **kwargs: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(kwargs)


@dataclass
class FakeContext:
    """The parts of CallbackContext the handlers use."""

    bot: FakeBot
    error: BaseException | None = None
    bot_data: dict[str, Any] = field(default_factory=dict)


def make_update(
    text: str | None = "/start",
    *,
    chat_type: str = "private",
    language_code: str | None = "en",
    update_id: int = 4242,
    thread_id: int | None = None,
    bot: FakeBot | None = None,
    **message_fields: Any,
) -> Update:
    """Build a real Update for a new message, with a bot_command entity when the text is a command."""
    chat_id = 555 if chat_type == "private" else -100123
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type != "private":
        chat["title"] = "Coordinators"
    message: dict[str, Any] = {
        "message_id": 10,
        "date": 1_700_000_000,
        "chat": chat,
        "from": {
            "id": 555,
            "is_bot": False,
            "first_name": "Alice",
            "username": "alice_n",
            "language_code": language_code,
        },
        **message_fields,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
    update = Update.de_json({"update_id": update_id, "message": message}, None)
    assert update.message is not None
    update.message.set_bot(bot or FakeBot())  # type: ignore[arg-type]
    return update


async def test_private_message_nobody_handled_is_answered_with_how_to_begin():
    """Anything unhandled in a private chat gets "I did not understand that. Send /start to begin."."""
    bot = FakeBot()
    await not_understood(make_update("/help", bot=bot), FakeContext(bot))  # type: ignore[arg-type]
    assert bot.sent[0]["text"] == "I did not understand that. Send /start to begin."


async def test_group_command_addressed_to_the_bot_is_answered():
    """In a group, `/x@beacon_bot` gets a short answer."""
    bot = FakeBot()
    update = make_update(f"/report@{BOT_USERNAME}", chat_type="supergroup", bot=bot)
    await group_command(update, FakeContext(bot))  # type: ignore[arg-type]
    assert [sent["text"] for sent in bot.sent] == ["This command is not available here."]


@pytest.mark.parametrize("text", ["/report", "/report@other_bot", "hello /report@beacon_bot"])
async def test_group_messages_not_addressed_to_the_bot_are_ignored(text):
    """In a group, the bot stays silent unless a command names it."""
    bot = FakeBot()
    update = make_update(text, chat_type="supergroup", bot=bot)
    await group_command(update, FakeContext(bot))  # type: ignore[arg-type]
    assert bot.sent == []


def test_addressed_command_is_matched_case_insensitively():
    """Telegram usernames are case-insensitive, so `/Start@Beacon_Bot` names the bot."""
    update = make_update("/Start@Beacon_Bot now", chat_type="group")
    assert update.message is not None
    assert addressed_command(update.message, BOT_USERNAME) == "Start"
    assert addressed_command(update.message, None) is None


def raise_with_private_text() -> ValueError:
    """Return a ValueError raised (so it has a traceback) whose message quotes a reporter's text."""
    try:
        raise ValueError(f"could not parse {PRIVATE_TEXT!r}")
    except ValueError as exc:
        return exc


async def test_error_handler_logs_type_and_update_id_but_no_content(caplog):
    """The log names the exception type and update id, never the text, the name or the username."""
    bot = FakeBot()
    update = make_update(PRIVATE_TEXT, bot=bot)
    caplog.set_level(logging.DEBUG)
    await on_error(update, FakeContext(bot, error=raise_with_private_text()))  # type: ignore[arg-type]
    assert "builtins.ValueError" in caplog.text
    assert "4242" in caplog.text
    assert "raise_with_private_text" in caplog.text
    for secret in ("Alice", "alice_n", "Nguyen", "building 5", "555"):
        assert secret not in caplog.text


async def test_error_handler_apologises_in_the_persons_language():
    """After an error the person is told, in their language, to try again."""
    bot = FakeBot()
    update = make_update(PRIVATE_TEXT, language_code="zh-CN", bot=bot)
    await on_error(update, FakeContext(bot, error=raise_with_private_text()))  # type: ignore[arg-type]
    assert bot.sent == [
        {"chat_id": 555, "message_thread_id": None, "text": "我们这边出了点问题。请再试一次。"}
    ]


async def test_error_in_a_forum_topic_is_answered_in_that_topic():
    """An apology in a coordinators' forum goes to the topic the failing message came from."""
    bot = FakeBot()
    update = make_update("/x@beacon_bot", chat_type="supergroup", thread_id=77, bot=bot)
    await on_error(update, FakeContext(bot, error=RuntimeError("boom")))  # type: ignore[arg-type]
    assert bot.sent[0]["message_thread_id"] == 77
    assert bot.sent[0]["chat_id"] == -100123


async def test_error_handler_survives_when_the_apology_cannot_be_sent(caplog):
    """If the person blocked the bot, the failed apology is logged as a warning, not raised."""
    bot = FakeBot(fail_with=Forbidden("Forbidden: bot was blocked by the user"))
    update = make_update(PRIVATE_TEXT, bot=bot)
    await on_error(update, FakeContext(bot, error=RuntimeError("boom")))  # type: ignore[arg-type]
    assert "Could not apologise for update 4242: Forbidden" in caplog.text


async def test_error_without_an_update_is_only_logged(caplog):
    """An error in a background job (no update) is logged, and nothing is sent."""
    bot = FakeBot()
    await on_error(None, FakeContext(bot, error=RuntimeError("boom")))  # type: ignore[arg-type]
    assert bot.sent == []
    assert "Failed to process update None: builtins.RuntimeError" in caplog.text


def test_failure_description_names_the_causes_without_their_messages():
    """Chained exceptions are listed by type; none of their messages appear."""
    try:
        try:
            raise KeyError(PRIVATE_TEXT)
        except KeyError as inner:
            raise RuntimeError(PRIVATE_TEXT) from inner
    except RuntimeError as exc:
        described = describe_failure(exc)
    assert described.startswith("builtins.RuntimeError caused by builtins.KeyError at ")
    assert "Alice" not in described
    assert describe_failure(None) == "unknown error"
