"""/start: greet a reporter in a private chat and say what Beacon is for."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from handlers.common import translator_for

__all__ = ["start"]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greets the reporter calmly and says that reporting opens soon."""
    message = update.effective_message
    if message is None:
        return
    _ = translator_for(update, context).gettext
    # TRANSLATORS: The first message a person sees. They may be in danger and their phone may be
    # checked: keep it calm, short and neutral. "Scam compound": a guarded site where people are
    # forced to run online scams.
    greeting = _(
        "Hello. This is Beacon.\n"
        "\n"
        "You can write here safely. Nobody sees your name.\n"
        "\n"
        "Soon you will be able to report here a person who is held in a scam compound. "
        "This is not ready yet. Please come back in a few days.\n"
        "\n"
        "You can delete this chat at any time."
    )
    await message.reply_text(greeting)
