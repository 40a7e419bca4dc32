"""The intake benchmark's baseline: the report bot a team would build in an afternoon.

A python-telegram-bot ``ConversationHandler`` with ``PicklePersistence`` (its defaults: state written
every 60 s and at shutdown), asking the same 14 questions as Beacon's witness walk with the same kinds of
updates (buttons with the same callback data, typed text) and the same Bot API calls per update: the
answer to a button is acknowledged, its keyboard removed and the next question sent; a toggle redraws the
keyboard; the receipt is followed by a summary in the coordinators' group. No encryption, no database,
no translation, no validation beyond the buttons' patterns.

Configured by BASELINE_TOKEN, BASELINE_API_URL, BASELINE_PICKLE and BASELINE_GROUP; bench/intake.py runs
it in its own process against the sandbox.
"""

from __future__ import annotations

import os
import secrets

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

# Areas of the "Which area?" question: Beacon's area ids for Cambodia (bench/intake.py's reporters name them).
AREAS = (
    "kh-phnom-penh",
    "kh-sen-sok",
    "kh-toul-kork",
    "kh-preah-sihanouk",
    "kh-pailin",
    "kh-anlong-veng",
    "kh-o-smach",
    "kh-kandal",
)

# step -> (question, options). Toggles (multi-select) end with "done".
QUESTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "danger": ("Is someone in danger right now?", ("yes", "no", "skip")),
    "who": ("Who is this report about?", ("myself", "family", "friend", "witness", "skip")),
    "victim_ask": ("Do you want to tell us who the person is?", ("yes", "no")),
    "where": ("Where is the person held?", ("c-KH", "c-MM", "c-LA", "c-TH", "c-PH", "skip")),
    "area": ("Which area?", (*AREAS, "other", "skip")),
    "place": ("Anything that helps find the place?", ("skip",)),
    "passport": ("Was the person's passport taken?", ("taken", "kept", "unknown", "skip")),
    "phone": ("Was the person's phone taken?", ("taken", "kept", "unknown", "skip")),
    "conditions": ("What is happening there? Tap everything that applies.", ()),
    "people": ("How many people are held there?", ("1-5", "6-20", "21-100", "100+", "skip")),
    "nats": ("Where are the people held there from?", ()),
    "details": ("Anything else we should know? Write it here, then press Done.", ("done",)),
    "contact": ("May our team write to you in this chat?", ("on_check_in", "yes", "no")),
    "review": ("Please check your report.", ("submit", "edit", "cancel")),
}
TOGGLES: dict[str, tuple[str, ...]] = {
    "conditions": ("locked_in", "forced_scamming", "beaten", "debt", "sold", "no_pay"),
    "nats": ("VN", "KH", "MM", "TH", "LA", "ID", "PH", "CN"),
}
ORDER = tuple(QUESTIONS)
STATE = {step: number for number, step in enumerate(ORDER)}


def keyboard(step: str, ticked: frozenset[str] = frozenset()) -> InlineKeyboardMarkup:
    if step in TOGGLES:
        options = [*TOGGLES[step], "done"]
        labels = [("✅ " if o in ticked else "") + o for o in options]
    else:
        options = list(QUESTIONS[step][1])
        labels = options
    rows = [
        [InlineKeyboardButton(label, callback_data=f"s:{step}:{o}")]
        for label, o in zip(labels, options, strict=True)
    ]
    return InlineKeyboardMarkup(rows)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, step: str) -> int:
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_message(chat.id, QUESTIONS[step][0], reply_markup=keyboard(step))
    if step == "where":
        location = KeyboardButton("Share location", request_location=True)
        await context.bot.send_message(
            chat.id,
            "Or share a location:",
            reply_markup=ReplyKeyboardMarkup([[location]], resize_keyboard=True),
        )
    return STATE[step]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.effective_chat is not None
    assert context.user_data is not None
    context.user_data["report"] = {}
    await context.bot.send_message(
        update.effective_chat.id,
        "Hello. You can tell us here, privately, about someone held in a scam compound.",
        reply_markup=ReplyKeyboardRemove(),
    )
    return await ask(update, context, "danger")


def next_step(step: str, value: str) -> str:
    if step == "victim_ask":
        return "where"
    if step == "where" and value == "skip":
        return "place"
    return ORDER[ORDER.index(step) + 1]


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    assert context.user_data is not None
    _, step, value = query.data.split(":", 2)
    report = context.user_data.setdefault("report", {})
    await query.answer()
    if step in TOGGLES and value != "done":
        ticked = set(report.get(step, []))
        ticked ^= {value}
        report[step] = sorted(ticked)
        await query.edit_message_reply_markup(keyboard(step, frozenset(ticked)))
        return STATE[step]
    if step == "review":
        return await submit(update, context)
    if value != "done":
        report[step] = value
    await query.edit_message_reply_markup(None)
    return await ask(update, context, next_step(step, value))


async def on_place(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.message
    assert message is not None
    assert message.text is not None
    assert context.user_data is not None
    context.user_data.setdefault("report", {})["place"] = message.text
    await message.reply_text("✓", reply_markup=ReplyKeyboardRemove())
    return await ask(update, context, "passport")


async def on_details(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.message
    assert message is not None
    assert message.text is not None
    assert context.user_data is not None
    report = context.user_data.setdefault("report", {})
    report.setdefault("details", []).append(message.text)
    await message.reply_text("Noted. Send more, or press Done.")
    return STATE["details"]


async def submit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    assert query is not None
    assert query.message is not None
    assert context.user_data is not None
    report = context.user_data.pop("report", {})
    code = " ".join(f"{secrets.randbelow(10**4):04d}" for _ in range(4))
    context.bot_data.setdefault("reports", []).append({"code": code, **report})
    await context.bot.delete_messages(query.message.chat.id, [query.message.message_id])
    await context.bot.send_message(
        query.message.chat.id,
        f"Thank you. It is saved.\n\nYour code: {code}",
        reply_markup=keyboard("review"),
    )
    group = os.environ.get("BASELINE_GROUP")
    if group:
        await context.bot.send_message(int(group), f"New report: {sorted(report)}")
    return ConversationHandler.END


def build(token: str, api_url: str, pickle_path: str) -> Application:  # type: ignore[type-arg]
    application = (
        Application.builder()
        .token(token)
        .base_url(f"{api_url}/bot")
        .base_file_url(f"{api_url}/file/bot")
        .persistence(PicklePersistence(pickle_path))
        .build()
    )
    text = filters.TEXT & ~filters.COMMAND
    states = {
        STATE[step]: [CallbackQueryHandler(on_button, pattern=rf"^s:{step}:")]
        + ([MessageHandler(text, on_place)] if step == "place" else [])
        + ([MessageHandler(text, on_details)] if step == "details" else [])
        for step in ORDER
    }
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states=states,
            fallbacks=[CommandHandler("start", start)],
            name="report",
            persistent=True,
        )
    )
    return application


def main() -> None:
    application = build(
        os.environ["BASELINE_TOKEN"], os.environ["BASELINE_API_URL"], os.environ["BASELINE_PICKLE"]
    )
    application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)


if __name__ == "__main__":
    main()
