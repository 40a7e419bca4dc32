"""The error handler: log what failed (never what was said, nor by whom), then apologise in the chat."""

from __future__ import annotations

import logging
import traceback

from telegram import Update
from telegram.constants import ChatType
from telegram.error import Forbidden, NetworkError, RetryAfter
from telegram.ext import ContextTypes

from handlers.common import translator_for

__all__ = ["describe_failure", "on_error"]

_LOG = logging.getLogger(__name__)


def describe_failure(error: BaseException | None) -> str:
    """Describe ``error`` by exception types and code locations only.

    Exception messages are left out on purpose: they can quote the text a reporter sent.
    """
    if error is None:
        return "unknown error"
    kinds: list[str] = []
    cause: BaseException | None = error
    while cause is not None and len(kinds) < 5:
        kinds.append(f"{type(cause).__module__}.{type(cause).__qualname__}")
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    locations = [
        f"{frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ]
    described = " caused by ".join(kinds)
    if locations:
        described += " at " + " <- ".join(reversed(locations))
    return described


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Logs the failure's type and update id, then tells the person something went wrong."""
    update_id = update.update_id if isinstance(update, Update) else None
    _LOG.error("Failed to process update %s: %s", update_id, describe_failure(context.error))

    if not isinstance(update, Update):
        return
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.CHANNEL:
        return
    message = update.effective_message
    thread_id = message.message_thread_id if message is not None and message.is_topic_message else None
    _ = translator_for(update, context).gettext
    try:
        await context.bot.send_message(
            chat_id=chat.id,
            message_thread_id=thread_id,
            text=_("Something went wrong on our side. Please try again."),
        )
    except (Forbidden, NetworkError, RetryAfter) as exc:
        # BadRequest and TimedOut are NetworkError subclasses: the chat may be gone or Telegram slow.
        _LOG.warning("Could not apologise for update %s: %s", update_id, type(exc).__name__)
