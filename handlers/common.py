"""Helpers every handler shares: which language to answer in."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot.domain.records import Media, MediaKind
from bot.i18n import SOURCE_LOCALE, Translator, get_translator, native_name, negotiate_locale, ordered_locales

__all__ = ["DEFAULT_LOCALE_KEY", "send_with_media", "team_message", "translator_for"]

# Key in ``application.bot_data`` under which the composition root stores the configured default locale.
DEFAULT_LOCALE_KEY = "beacon.default_locale"


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
