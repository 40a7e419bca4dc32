"""Helpers every handler shares: which language to answer in."""

from __future__ import annotations

from collections.abc import Iterable

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot.domain.records import Media, MediaKind
from bot.i18n import SOURCE_LOCALE, Translator, get_translator, native_name, negotiate_locale, ordered_locales

__all__ = ["DEFAULT_LOCALE_KEY", "save_now", "send_with_media", "team_message", "translator_for"]

# Key in ``application.bot_data`` under which the composition root stores the configured default locale.
DEFAULT_LOCALE_KEY = "beacon.default_locale"


async def save_now(context: ContextTypes.DEFAULT_TYPE, user_ids: Iterable[int]) -> None:
    """Write these users' conversation data (step, draft) to the database now.

    Calls the persistence directly rather than python-telegram-bot's ``update_persistence``, which first
    deep-copies every user's data and serialises all writers behind one lock: Beacon's store serialises and
    encrypts the data before its first ``await``, so no copy is needed, and different reporters' writes
    need not wait for each other here. As in python-telegram-bot, a failed write goes to the error handler
    (with no update) instead of failing the update; the persistence keeps the user as unsaved, and the
    next flush writes them again.
    """
    application = context.application
    persistence = application.persistence
    if persistence is None or not persistence.store_data.user_data:
        return
    for user_id in user_ids:
        data = application.user_data.get(user_id)
        if data is None:
            continue
        try:
            await persistence.update_user_data(user_id, data)
        except Exception as error:
            await application.process_error(update=None, error=error)


def translator_for(update: object, context: ContextTypes.DEFAULT_TYPE) -> Translator:
    """Return the translator for the person behind ``update``, from their Telegram language setting."""
    default = context.bot_data.get(DEFAULT_LOCALE_KEY, SOURCE_LOCALE)
    if not isinstance(default, str):
        default = SOURCE_LOCALE
    user = update.effective_user if isinstance(update, Update) else None
    return get_translator(negotiate_locale(user.language_code if user else None, default))


def language_buttons(prefix: str) -> list[InlineKeyboardButton]:
    """One button per shipped language, named in its own script, with callback data ``prefix + code``."""
    return [
        InlineKeyboardButton(native_name(code), callback_data=f"{prefix}{code}") for code in ordered_locales()
    ]


def language_keyboard(prefix: str, per_row: int = 2) -> InlineKeyboardMarkup:
    buttons = language_buttons(prefix)
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


def team_message(t: Translator, text: str) -> str:
    """How a coordinator's reply reads to a reporter: from "the team", never from a person."""
    return t.gettext("Message from the team:\n\n{text}").format(text=text)


async def send_with_media(
    bot: Bot, chat_id: int, text: str, media: Media | None, *, protect_content: bool | None = None
) -> Message:
    """Send `text` alone, or a sanitised photo or voice note with `text` as its caption (Telegram's 1024)."""
    if media is None:
        return await bot.send_message(chat_id, text, protect_content=protect_content)
    caption = text[:1024] or None
    if media.kind is MediaKind.PHOTO:
        return await bot.send_photo(chat_id, media.content, caption=caption, protect_content=protect_content)
    return await bot.send_voice(chat_id, media.content, caption=caption, protect_content=protect_content)
