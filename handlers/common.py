"""Helpers every handler shares: which language to answer in."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import SOURCE_LOCALE, Translator, get_translator, negotiate_locale

__all__ = ["DEFAULT_LOCALE_KEY", "translator_for"]

# Key in ``application.bot_data`` under which the composition root stores the configured default locale.
DEFAULT_LOCALE_KEY = "beacon.default_locale"


def translator_for(update: object, context: ContextTypes.DEFAULT_TYPE) -> Translator:
    """Return the translator for the person behind ``update``, from their Telegram language setting."""
    default = context.bot_data.get(DEFAULT_LOCALE_KEY, SOURCE_LOCALE)
    if not isinstance(default, str):
        default = SOURCE_LOCALE
    user = update.effective_user if isinstance(update, Update) else None
    return get_translator(negotiate_locale(user.language_code if user else None, default))
