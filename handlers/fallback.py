"""Fallbacks: what the bot says when nothing else handled a message."""

from __future__ import annotations

from telegram import Message, MessageEntity, Update
from telegram.ext import ContextTypes

from handlers.common import translator_for

__all__ = ["addressed_command", "group_command", "not_understood", "unknown_button"]


async def not_understood(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tells a person in a private chat that the message was not understood and how to begin."""
    message = update.effective_message
    if message is None:
        return
    _ = translator_for(update, context).gettext
    # TRANSLATORS: Keep "/start" as it is: it is a command the person can tap.
    await message.reply_text(_("I did not understand that. Send /start to begin."))


async def group_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers an unknown command addressed to the bot by name in a group; ignores everything else."""
    message = update.effective_message
    if message is None or addressed_command(message, context.bot.username) is None:
        return
    _ = translator_for(update, context).gettext
    await message.reply_text(_("This command is not available here."))


def addressed_command(message: Message, bot_username: str | None) -> str | None:
    """Return the command (without "/") if ``message`` starts with ``/command@bot_username``, else None."""
    if not bot_username or not message.entities:
        return None
    entity = message.entities[0]
    if entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
        return None
    command, _, target = message.parse_entity(entity).removeprefix("/").partition("@")
    if target.lower() != bot_username.lower():
        return None
    return command


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers a button the bot does not know (stale, or forged callback data) without acting on it."""
    query = update.callback_query
    if query is None:
        return
    _ = translator_for(update, context).gettext
    await query.answer(_("This button is no longer active."))
