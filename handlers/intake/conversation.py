"""The reporter's private conversation: start, answer questions, review, submit, follow up, wipe.

Thin python-telegram-bot callbacks. The step and the draft live in `user_data` (persisted encrypted,
written through after every update); what each answer means is in `draft.py`, what each question says
in `questions.py`, and what a submission does in the intake service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from bot.domain.gazetteer import Gazetteer
from bot.domain.models import MAX_FREE_TEXT, CaseStatus
from bot.domain.records import Media, TeamMessage
from bot.i18n import SHIPPED_LOCALES, Translator, get_translator, native_name, negotiate_locale
from bot.services.intake import AlreadySubmitted, IntakeService, TooManyAttempts
from bot.services.media import UnsupportedMedia, sanitise_image, voice_note
from handlers.common import DEFAULT_LOCALE_KEY, language_buttons, save_now, send_with_media, team_message
from handlers.intake import draft as flow
from handlers.intake.draft import Draft, Step
from handlers.intake.questions import CALLBACK_PREFIX, Question, button, location_keyboard, question, rows
from handlers.intake.review import review_question

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

SERVICES_KEY = "beacon.intake"
# user_data keys
STEP = "step"
DRAFT = "draft"
MESSAGES = "msgs"
LOCALE = "locale"
SEEN = "seen"
AMEND = "amend_case"
ADD_CASE = "add_case"
WITHDRAW_CASES = "withdraw_cases"
RECEIPT_MESSAGE = "receipt_msg"
LOCATION_KEYBOARD = "loc_kb"
# The reporter's case ids just before a submission's commit, written through first: a press after a
# crash that finds a newer case knows the earlier press was committed (and that no receipt was shown).
SUBMITTING = "submitting"
# Steps whose question can be shown again when a reporter presses a button of another one.
_RESHOWN = frozenset(Step) - {Step.RECEIPT, Step.ADD, Step.WITHDRAW}
# Flood guard: more than this many messages in the window get one "slow down" answer, then silence.
FLOOD_MESSAGES = 20
FLOOD_WINDOW_SECONDS = 10.0
MAX_TRACKED = 2000
# A call to the reporter that fails for a passing reason (a 5xx, a dropped connection, a timeout, a 429
# outlasting the rate limiter's own retries) is made again after these pauses: a lost question would leave
# the reporter with nothing to answer. Bounded, because updates are handled one at a time.
RETRY_PAUSES = (0.5, 1.0, 2.0)
MAX_RETRY_AFTER_SECONDS = 5.0


@dataclass
class IntakeContext:
    """What the intake handlers need, stored once in bot_data by the composition root."""

    intake: IntakeService
    gazetteer: Gazetteer
    idle_timeout: timedelta
    flood: dict[int, deque[float]]
    # Called after a change is committed, so that the coordinators' alert goes out without waiting.
    committed: Callable[[ContextTypes.DEFAULT_TYPE], None] | None = None


def services(context: ContextTypes.DEFAULT_TYPE) -> IntakeContext:
    found = context.bot_data.get(SERVICES_KEY)
    if not isinstance(found, IntakeContext):
        raise RuntimeError("the intake services are not configured")
    return found


def user_data(context: ContextTypes.DEFAULT_TYPE) -> dict[str, Any]:
    data = context.user_data
    if data is None:
        raise RuntimeError("no user_data for this update")
    return data


def translator(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Translator:
    """The reporter's chosen language, else the one Telegram reports, else the default."""
    data = context.user_data or {}
    chosen = data.get(LOCALE)
    if isinstance(chosen, str) and chosen in SHIPPED_LOCALES:
        return get_translator(chosen)
    default = context.bot_data.get(DEFAULT_LOCALE_KEY, "en")
    user = update.effective_user
    return get_translator(negotiate_locale(user.language_code if user else None, str(default)))


# ------------------------------------------------------------------------------------------ messages


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """Make a Bot API call, again after a short pause when it fails for a passing reason.

    ``BadRequest`` and ``Forbidden`` are answers, not accidents, and are raised at once; so is the last
    transient failure once the pauses are used up.
    """
    for pause in (*RETRY_PAUSES, None):
        try:
            return await call()
        except RetryAfter as error:
            if pause is None:
                raise
            wait = error.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            pause = max(pause, min(seconds, MAX_RETRY_AFTER_SECONDS))
            _LOG.warning("Telegram asked to wait %.0f s; trying again", seconds)
        except BadRequest:
            raise
        except NetworkError as error:  # 5xx, connection errors and TimedOut
            if pause is None:
                raise
            _LOG.warning("A call to Telegram failed (%s); trying again", type(error).__name__)
        await asyncio.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


async def acknowledge(query: CallbackQuery, text: str | None = None) -> None:
    """Answer a button press; best effort, since the press is acted on whether or not this arrives."""
    try:
        await patiently(lambda: query.answer(text))
    except TelegramError as error:
        _LOG.warning("A button press could not be acknowledged: %s", type(error).__name__)


async def take_buttons_away(message: Message, markup: InlineKeyboardMarkup | None = None) -> None:
    """Redraw (or remove) a question's buttons; best effort: a stale button is refused when pressed."""
    try:
        await message.edit_reply_markup(reply_markup=markup)
    except BadRequest:
        pass  # "message is not modified" after a double tap, or the message is gone
    except TelegramError as error:
        _LOG.warning("A question's buttons could not be updated: %s", type(error).__name__)


async def write_through(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Write the reporter's answers to the database now, before "Noted" tells them they were kept.

    The answers are otherwise written after the update (``flush_after_update``): a stop between the two
    would lose words the reporter was told were noted. A failed write is retried at every later flush.
    """
    user = update.effective_user
    if user is not None:
        await save_now(context, [user.id])


def track(context: ContextTypes.DEFAULT_TYPE, message: Message | None) -> None:
    """Remember a message of this conversation so that it can be wiped later (both sides)."""
    if message is None or context.user_data is None:
        return
    ids: list[int] = context.user_data.setdefault(MESSAGES, [])
    if len(ids) < MAX_TRACKED:
        ids.append(message.message_id)


async def say(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    text: str,
    markup: InlineKeyboardMarkup | Any = None,
    *,
    keep: bool = False,
) -> Message | None:
    """Send plain text (never parsed as markup) to the reporter's chat; tracked for wiping unless kept."""
    chat = update.effective_chat
    if chat is None:
        return None
    sent = await patiently(lambda: context.bot.send_message(chat.id, text, reply_markup=markup))
    if not keep:
        track(context, sent)
    return sent


async def wipe(update: Update, context: ContextTypes.DEFAULT_TYPE, *, extra: list[int] | None = None) -> None:
    """Delete every tracked message of the conversation on both sides (Telegram allows it for 48 hours)."""
    chat = update.effective_chat
    data = context.user_data
    if chat is None or data is None:
        return
    ids = sorted(set(data.pop(MESSAGES, []) + (extra or [])))
    await delete_messages(context, chat.id, ids)


async def delete_messages(context: ContextTypes.DEFAULT_TYPE, chat_id: int, ids: list[int]) -> None:
    """Delete messages in batches of 100; those already gone or too old are skipped."""
    for start in range(0, len(ids), 100):
        batch = ids[start : start + 100]
        try:
            await context.bot.delete_messages(chat_id, batch)
        except BadRequest:
            # Some were already deleted or are older than 48 hours: fall back to one by one.
            for message_id in batch:
                try:
                    await context.bot.delete_message(chat_id, message_id)
                except BadRequest:
                    continue
        except Forbidden:
            return


def question_for(context: ContextTypes.DEFAULT_TYPE, t: Translator, step: Step) -> Question:
    """The question of `step` as it stands for the reporter's draft."""
    gazetteer = services(context).gazetteer
    draft: Draft = user_data(context)[DRAFT]
    if step is Step.REVIEW:
        return review_question(t, draft, gazetteer)
    return question(step, t, draft, gazetteer)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, step: Step) -> None:
    """Show the question for `step` and remember that the conversation is there."""
    data = user_data(context)
    data[STEP] = step.value
    t = translator(update, context)
    q = question_for(context, t, step)
    if step not in (Step.WHERE, Step.AREA, Step.PLACE_DETAILS) and data.pop(LOCATION_KEYBOARD, False):
        # The reply keyboard for sharing a location is no longer needed: take it away.
        await say(update, context, "✓", ReplyKeyboardRemove())
    await say(update, context, q.text, q.markup)
    if step is Step.WHERE:
        # A message carries inline buttons or a reply keyboard, not both: the location button comes next.
        await say(update, context, t.gettext("Or share a location:"), location_keyboard(t))
        data[LOCATION_KEYBOARD] = True


def current_step(context: ContextTypes.DEFAULT_TYPE) -> Step | None:
    value = (context.user_data or {}).get(STEP)
    try:
        return Step(value) if isinstance(value, str) else None
    except ValueError:
        return None


def touch(context: ContextTypes.DEFAULT_TYPE) -> None:
    if context.user_data is not None:
        context.user_data[SEEN] = datetime.now(UTC).isoformat()


def flooding(context: ContextTypes.DEFAULT_TYPE, user_id: int) -> tuple[bool, bool]:
    """(over the limit, first time over it in this window) for this user's recent messages."""
    window = services(context).flood.setdefault(user_id, deque())
    now = time.monotonic()
    while window and window[0] < now - FLOOD_WINDOW_SECONDS:
        window.popleft()
    window.append(now)
    over = len(window) > FLOOD_MESSAGES
    return over, len(window) == FLOOD_MESSAGES + 1


# ------------------------------------------------------------------------------------------ commands


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Shows the calm notice and the first question (is anyone in danger now?)."""
    message = update.effective_message
    data = user_data(context)
    t = translator(update, context)
    _ = t.gettext
    track(context, message)
    touch(context)
    if await _received_before(update, context):
        return  # the reporter's last report was committed, unconfirmed: say so before anything new
    data.pop(SUBMITTING, None)
    data.pop(AMEND, None)
    data[DRAFT] = flow.new_draft(t.locale)
    # TRANSLATORS: The first screen. A captor may glance at the phone: keep it calm and ordinary.
    notice = _(
        "Hello. You can tell us here, privately, about someone who needs help: where they are, what is "
        "happening and, if you wish, who they are. Our small team of caseworkers reads it. "
        "They never see your name or account.\n\n"
        "You can skip any question. Send /x at any time to stop and clear this chat. "
        "Send /delete to withdraw a report. /language changes the language."
    )
    language_button = InlineKeyboardButton("🌐 " + native_name(t.locale), callback_data="l:menu")
    await say(update, context, notice, InlineKeyboardMarkup([[language_button]]))
    await ask(update, context, Step.DANGER)


async def exit_and_wipe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/x: stops at once, deletes the whole conversation on both sides, and says nothing."""
    message = update.effective_message
    extra = [message.message_id] if message else []
    receipt = (context.user_data or {}).get(RECEIPT_MESSAGE)
    if isinstance(receipt, int):
        extra.append(receipt)
    await wipe(update, context, extra=extra)
    if context.user_data is not None:
        context.user_data.clear()


async def language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/language: offers every shipped language, each named in its own script."""
    if update.callback_query is None:
        track(context, update.effective_message)
    t = translator(update, context)
    buttons = language_buttons("l:")
    await say(update, context, t.gettext("Choose your language:"), InlineKeyboardMarkup(rows(buttons, 2)))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: what the commands do."""
    track(context, update.effective_message)
    _ = translator(update, context).gettext
    await say(
        update,
        context,
        _(
            "/start: begin a report\n"
            "/status: check your report and replies from the team\n"
            "/add: add information, photos or voice notes to your report\n"
            "/delete: withdraw your report\n"
            "/language: change the language\n"
            "/x: stop and clear this chat at once"
        ),
    )


def _code_argument(context: ContextTypes.DEFAULT_TYPE) -> str | None:
    args = context.args or []
    return "".join(args) if args else None


async def _cases_for(update: Update, context: ContextTypes.DEFAULT_TYPE) -> list[str] | None:
    """The cases the reporter may act on: by receipt code if given, else those of this account.

    Returns None (after answering) when a code was given but is wrong or too many were tried.
    """
    user = update.effective_user
    if user is None:
        return []
    intake = services(context).intake
    _ = translator(update, context).gettext
    code = _code_argument(context)
    if code is None:
        return await intake.my_cases(user.id)
    message = update.effective_message
    if message is not None:
        # The code is a secret: do not leave it in the chat.
        await delete_messages(context, message.chat_id, [message.message_id])
    try:
        case_id = await intake.case_for_code(user.id, code)
    except TooManyAttempts:
        await say(update, context, _("Too many attempts. Please wait a few minutes and try again."))
        return None
    if case_id is None:
        await say(update, context, _("No report matches this code. Check the digits and try again."))
        return None
    return [case_id]


def _status_text(t: Translator, case_id: str, status: CaseStatus, withdrawn: bool) -> str:
    _ = t.gettext
    if withdrawn:
        state = _("withdrawn")
    elif status is CaseStatus.NEW:
        state = _("received")
    elif status is CaseStatus.CLOSED:
        state = _("closed")
    else:
        state = _("being handled")
    return _("Report {case_id}: {state}").format(case_id=case_id, state=state)


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status [code]: a neutral status of the reporter's cases and any messages waiting."""
    track(context, update.effective_message)
    t = translator(update, context)
    _ = t.gettext
    cases = await _cases_for(update, context)
    if cases is None:
        return
    if not cases:
        await say(
            update,
            context,
            _(
                "There is no report from this account. "
                "If you have a report code, send /status followed by the code."
            ),
        )
        return
    intake = services(context).intake
    lines = []
    messages: list[TeamMessage] = []
    for case_id in cases[:10]:
        view = await intake.status(case_id)
        if view is not None:
            lines.append(_status_text(t, view.case_id, view.status, view.withdrawn))
            messages.extend(view.messages)
    if not messages:
        lines.append(_("No new messages from the team."))
    await say(update, context, "\n".join(lines))
    chat = update.effective_chat
    for message in messages:
        # One message each: a reply may be long, and each stays readable on a small screen.
        if chat is not None:
            sent = await send_with_media(context.bot, chat.id, team_message(t, message.text), message.media)
            track(context, sent)


async def add(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/add [code]: collects more text, photos or voice notes for the reporter's latest case."""
    track(context, update.effective_message)
    _ = translator(update, context).gettext
    cases = await _cases_for(update, context)
    if cases is None:
        return
    if not cases:
        await say(
            update,
            context,
            _(
                "There is no report from this account. "
                "If you have a report code, send /add followed by the code."
            ),
        )
        return
    data = user_data(context)
    data[ADD_CASE] = cases[0]
    data[DRAFT] = flow.new_draft(translator(update, context).locale)
    data[STEP] = Step.ADD.value
    done = InlineKeyboardMarkup([[button(Step.ADD, "done", _("Done"))]])
    await say(
        update,
        context,
        _("Send what you want to add: text, photos or voice notes. Press Done when you have finished."),
        done,
    )


async def delete(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/delete [code]: asks to confirm withdrawing the reporter's report(s)."""
    track(context, update.effective_message)
    _ = translator(update, context).gettext
    cases = await _cases_for(update, context)
    if cases is None:
        return
    if not cases:
        await say(
            update,
            context,
            _(
                "There is no report from this account to withdraw. "
                "If you have a report code, send /delete followed by the code."
            ),
        )
        return
    data = user_data(context)
    data[WITHDRAW_CASES] = cases
    data[STEP] = Step.WITHDRAW.value
    markup = InlineKeyboardMarkup(
        [[button(Step.WITHDRAW, "yes", _("Yes, withdraw")), button(Step.WITHDRAW, "no", _("No, keep it"))]]
    )
    await say(
        update,
        context,
        _("Withdraw your report? What you wrote, your photos and voice notes will be erased."),
        markup,
    )


# ------------------------------------------------------------------------------------------ answers


def refused_choice(gazetteer: Gazetteer, draft: Draft | None, step: Step, value: str) -> bool:
    """Whether a place button's value is one no question offered: a country not in the gazetteer, or an area
    that is unknown or lies in another country than the one chosen. (Other values are checked by the flow.)"""
    if step is Step.WHERE and value.startswith("c-"):
        return gazetteer.country(value[2:]) is None
    if step is Step.AREA and value not in ("other", "skip"):
        area = gazetteer.area(value)
        country = flow.report_of(draft).place.country if draft else None
        return area is None or area.country != country
    return False


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handles every inline button of the reporter's conversation; stale or forged ones are refused."""
    query = update.callback_query
    if query is None:
        return
    t = translator(update, context)
    _ = t.gettext
    data = query.data or ""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        # Reporters' buttons live in private chats only; the same data pressed elsewhere is forged.
        await acknowledge(query, _("This button is no longer active."))
        return
    if data == "l:menu":
        await acknowledge(query)
        await language(update, context)
        return
    if data.startswith("l:"):
        await _choose_language(update, context, data[2:])
        return
    if data == f"{CALLBACK_PREFIX}:{Step.RECEIPT.value}:clear" and RECEIPT_MESSAGE in (
        context.user_data or {}
    ):
        await acknowledge(query)
        await _clear_receipt(update, context)
        return
    prefix, _sep, rest = data.partition(":")
    step_value, _sep2, value = rest.partition(":")
    step = current_step(context)
    if prefix != CALLBACK_PREFIX or step is None or step_value != step.value:
        if prefix == CALLBACK_PREFIX and step in _RESHOWN and DRAFT in user_data(context):
            # A report is in progress: show where it is. After a restart the current question may never
            # have reached the reporter, and the buttons they still see belong to an earlier one.
            await ask(update, context, step)
        await acknowledge(query, _("This button is no longer active."))
        return
    if refused_choice(services(context).gazetteer, user_data(context).get(DRAFT), step, value):
        # Answered once, before anything else: a second answer to the same press would fail.
        await acknowledge(query, _("This button is no longer active."))
        return
    await acknowledge(query)
    touch(context)
    if step is Step.REVIEW and value == "submit":
        await _submit(update, context)
        return
    if step is Step.WITHDRAW:
        await _confirm_withdraw(update, context, value == "yes")
        return
    if step is Step.ADD and value == "done":
        await _finish_add(update, context)
        return
    if step is Step.FAST_MORE and value == "stop":
        user_data(context).pop(STEP, None)
        await say(update, context, _("Thank you. Send /add at any time to tell us more."))
        return
    draft = user_data(context).get(DRAFT)
    # No draft: a button of the receipt, once the report it belonged to was sent.
    following = flow.apply_choice(draft, step, value, datetime.now(UTC).date()) if draft else None
    if draft is None or following is None:
        await say(update, context, _("This button is no longer active."))
        return
    if following is step and query.message is not None and isinstance(query.message, Message):
        # A multi-select (conditions, nationalities): redraw the ticks in place.
        q = question(step, t, draft, services(context).gazetteer)
        await take_buttons_away(
            query.message, q.markup if isinstance(q.markup, InlineKeyboardMarkup) else None
        )
        return
    await ask(update, context, following)
    if isinstance(query.message, Message):
        # The question is answered: take its buttons away so that it cannot be answered twice. Only now:
        # killed in between, the bot would otherwise leave a reporter with no button to press at all.
        await take_buttons_away(query.message)


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handles anything a reporter sends in a private chat outside commands, at whatever step they are."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    # Tracked first, so that even a flood is wiped by /x or after submission.
    track(context, message)
    over, first = flooding(context, user.id)
    t = translator(update, context)
    _ = t.gettext
    if over:
        if first:
            await say(
                update, context, _("That is a lot of messages at once. Please slow down, then try again.")
            )
        return
    touch(context)
    if message.contact is not None:
        # Never keep a phone number: remove the shared contact from the chat too.
        await delete_messages(context, message.chat_id, [message.message_id])
        await say(update, context, _("Thank you, but we do not need a phone number. It was not saved."))
        return
    step = current_step(context)
    if step is None or step is Step.RECEIPT:
        await say(update, context, _("Send /start to begin a report, or /help to see what I can do."))
        return
    data = user_data(context)
    draft: Draft = data.setdefault(DRAFT, flow.new_draft(t.locale))
    following: Step | None
    if message.text is not None:
        if len(message.text) > MAX_FREE_TEXT:
            await say(update, context, _("This message is too long. Please send it in shorter parts."))
            return
        if step is Step.ADD:
            draft["add_text"] = flow.append_text(draft.get("add_text"), message.text)
            await write_through(update, context)
            await say(update, context, _("Noted. Send more, or press Done."))
            return
        following = flow.apply_text(draft, step, message.text)
    elif message.location is not None:
        area = services(context).gazetteer.nearest_area(message.location.latitude, message.location.longitude)
        following = flow.apply_location(
            draft,
            step,
            message.location.latitude,
            message.location.longitude,
            (area.country, area.id) if area else None,
        )
    elif message.photo:
        following = flow.apply_media(draft, step, "photo", message.photo[-1].file_id)
    elif message.document is not None and (message.document.mime_type or "").startswith("image/"):
        following = flow.apply_media(draft, step, "photo", message.document.file_id)
    elif message.voice is not None:
        following = flow.apply_media(draft, step, "voice", message.voice.file_id)
    elif message.document is not None:
        await say(
            update,
            context,
            _("Files cannot be accepted here, only photos and voice notes. Please send a photo instead."),
        )
        return
    else:
        following = None
    if following is None:
        # The hint carries the question's buttons again: after a restart the question on screen may not
        # be the one the bot is at (or its buttons may be gone), and a reporter must never be left with
        # nothing to press.
        buttons = question_for(context, t, step).markup
        inline = buttons if isinstance(buttons, InlineKeyboardMarkup) else None
        await say(update, context, _hint(t, step), inline)
        return
    if following is step and message.caption and step in (Step.DETAILS, Step.ADD):
        # A caption is the reporter's words too: keep it with their text, not only the photo.
        if step is Step.ADD:
            draft["add_text"] = flow.append_text(draft.get("add_text"), message.caption)
        else:
            flow.apply_text(draft, step, message.caption)
    if following is step:
        if step in (Step.DETAILS, Step.ADD, Step.NATIONALITIES):  # typed nationalities too: say it was read
            await write_through(update, context)
            await say(update, context, _("Noted. Send more, or press Done."))
        return
    if step is Step.FAST_LINE:
        await _submit(update, context)
        return
    if step in flow.LOCATION_STEPS and message.location is not None:
        data.pop(LOCATION_KEYBOARD, None)
        await say(update, context, _("Location received."), ReplyKeyboardRemove())
    await ask(update, context, following)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An unknown command in a private chat: say so, keep the report where it was, wipe both later."""
    track(context, update.effective_message)
    _ = translator(update, context).gettext
    if current_step(context) in (None, Step.RECEIPT):
        await say(update, context, _("I did not understand that. Send /start to begin."))
    else:
        await say(
            update,
            context,
            _("I do not know this command. Your answers are kept: answer the question above, or send /help."),
        )


def _hint(t: Translator, step: Step) -> str:
    """What to do instead, when the input does not fit the question."""
    _ = t.gettext
    if step in (Step.DETAILS, Step.ADD):
        return _("Please send text, photos or voice notes, then press Done.")
    if step in flow.TEXT_STEPS or step in flow.LOCATION_STEPS:
        return _("Please type your answer, or use the buttons above. Send /x to stop.")
    if step is Step.VICTIM_PHOTO:
        return _("Please send a photo, or press Skip.")
    return _("Please use the buttons above to answer. Send /x to stop.")


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message is not read again: say so, so that nothing is lost silently."""
    _ = translator(update, context).gettext
    await say(update, context, _("Edits are not read. Please send the corrected text as a new message."))


# ------------------------------------------------------------------------------------------ submission


class MediaUnavailable(Exception):
    """Telegram could not hand over a photo or voice note just now (not: the file is unusable)."""


async def _fetch_media(context: ContextTypes.DEFAULT_TYPE, items: list[dict[str, str]]) -> list[Media]:
    """Download and sanitise the photos and voice notes of the draft; an unreadable one is left out.

    Raises ``MediaUnavailable`` when Telegram keeps failing for a passing reason: then nothing is saved,
    rather than a report without the photo its reporter sent.
    """
    media: list[Media] = []
    for item in items:
        try:
            telegram_file = await patiently(functools.partial(context.bot.get_file, item["file_id"]))
            content = bytes(await patiently(telegram_file.download_as_bytearray))
            media.append(sanitise_image(content) if item["kind"] == "photo" else voice_note(content, None))
        except (BadRequest, Forbidden, UnsupportedMedia, KeyError) as error:
            _LOG.warning("A media item could not be kept: %s", type(error).__name__)
        except (NetworkError, RetryAfter) as error:
            raise MediaUnavailable(type(error).__name__) from error
    return media


async def _after_commit(context: ContextTypes.DEFAULT_TYPE, update: Update) -> None:
    """Tell the alert dispatcher, then wipe the conversation (best effort: the change is committed)."""
    _committed(context)
    try:
        await wipe(update, context)
    except TelegramError as error:
        _LOG.warning("The conversation could not be wiped after a commit: %s", type(error).__name__)


async def _submit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Commits the report, then (only then) confirms with the receipt code and clears the conversation."""
    data = user_data(context)
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    t = translator(update, context)
    _ = t.gettext
    draft: Draft = data[DRAFT]
    intake = services(context).intake
    amend = data.get(AMEND)
    if not isinstance(amend, str):
        if await _received_before(update, context):
            return
        data[SUBMITTING] = await intake.my_cases(user.id)
        # Written through before the commit it guards.
        await save_now(context, [user.id])
    try:
        media = await _fetch_media(context, draft.get("media", []))
        if isinstance(amend, str):
            await intake.amend(amend, flow.report_of(draft), media, update_id=update.update_id)
            receipt = None
        else:
            receipt = await intake.submit(
                flow.report_of(draft),
                reporter_id=user.id,
                contact_chat_id=chat.id,
                media=media,
                update_id=update.update_id,
            )
    except AlreadySubmitted:
        await _already_received(update, context)
        return
    except Exception:
        # The draft and the step are kept: pressing "Send" again tries again.
        _LOG.exception("A report could not be saved")
        await say(update, context, _("Sorry, the report could not be saved. Please try again in a moment."))
        return
    # Committed: the conversation moves on before anything else can fail, so that the same answers are
    # not submitted a second time, whatever happens to the messages below.
    data.pop(DRAFT, None)
    data.pop(AMEND, None)
    data.pop(STEP, None)
    data.pop(SUBMITTING, None)
    if receipt is not None:
        data[STEP] = Step.RECEIPT.value
    await _after_commit(context, update)
    if receipt is None:
        await say(update, context, _("Thank you. Your report was updated."), keep=True)
        return
    _LOG.info("Case %s submitted", receipt.case_id)
    text = _(
        "Thank you. It is saved.\n\nYour code: {code}\n\nWrite it down somewhere safe; it looks like a phone "
        "number. With it you can check for replies from any account: /status followed by the code."
    ).format(code=receipt.formatted_code)
    markup = InlineKeyboardMarkup([[button(Step.RECEIPT, "clear", _("I wrote it down. Clear this."))]])
    try:
        sent = await say(update, context, text, markup, keep=True)
    except TelegramError as error:
        # Not the error handler's "please try again": the report is saved, and trying again would file
        # it twice. The reporter finds it with /status.
        _LOG.warning(
            "The receipt for case %s could not be delivered: %s", receipt.case_id, type(error).__name__
        )
        return
    if sent is not None:
        data[RECEIPT_MESSAGE] = sent.message_id
    if flow.report_of(draft).fast_track:
        # The rest of the questions are offered; the answers amend the case just submitted.
        data[AMEND] = receipt.case_id
        data[DRAFT] = draft
        await ask(update, context, Step.FAST_MORE)


async def _received_before(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether a submission cut short by a restart (between its commit and the receipt) was committed;
    if so the reporter is told, once."""
    user = update.effective_user
    before = user_data(context).get(SUBMITTING)
    if user is None or not isinstance(before, list):
        return False
    if not set(await services(context).intake.my_cases(user.id)) - set(before):
        return False
    await _already_received(update, context)
    return True


async def _already_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The report was committed by an earlier press: say so and close the draft (the code cannot be shown
    again; /status without a code still finds the report)."""
    data = user_data(context)
    for key in (DRAFT, AMEND, STEP, SUBMITTING):
        data.pop(key, None)
    try:
        await wipe(update, context)
    except TelegramError as error:
        _LOG.warning("The conversation could not be wiped: %s", type(error).__name__)
    await say(
        update, context, translator(update, context).gettext("This report was already received."), keep=True
    )


def _committed(context: ContextTypes.DEFAULT_TYPE) -> None:
    hook = services(context).committed
    if hook is not None:
        hook(context)


async def _clear_receipt(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = user_data(context)
    receipt = data.pop(RECEIPT_MESSAGE, None)
    chat = update.effective_chat
    if chat is not None and isinstance(receipt, int):
        await delete_messages(context, chat.id, [receipt])
    if current_step(context) is Step.RECEIPT:
        data.pop(STEP, None)
    await say(update, context, translator(update, context).gettext("Thank you."), keep=True)


async def _confirm_withdraw(update: Update, context: ContextTypes.DEFAULT_TYPE, confirmed: bool) -> None:
    data = user_data(context)
    _ = translator(update, context).gettext
    if not confirmed:
        data.pop(WITHDRAW_CASES, None)
        data.pop(STEP, None)
        await say(update, context, _("Nothing was changed."))
        return
    intake = services(context).intake
    cases: list[str] = list(data.get(WITHDRAW_CASES, []))
    try:
        for case_id in list(cases):
            await intake.withdraw(case_id, update_id=None)
            _LOG.info("Case %s withdrawn by its reporter", case_id)
            # Not withdrawn again when "Yes" is pressed after a failure with the next one.
            cases.remove(case_id)
            data[WITHDRAW_CASES] = list(cases)
    except Exception:
        # The question stays: "Yes, withdraw" can be pressed again once storage works.
        _LOG.exception("A withdrawal could not be saved")
        await say(update, context, _("Sorry, this could not be saved. Please try again in a moment."))
        return
    data.pop(WITHDRAW_CASES, None)
    data.pop(STEP, None)
    await _after_commit(context, update)
    await say(update, context, _("Your report was withdrawn."), keep=True)


async def _finish_add(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = user_data(context)
    case_id = data.get(ADD_CASE)
    draft: Draft = data.get(DRAFT) or {}
    _ = translator(update, context).gettext
    text = draft.get("add_text")
    try:
        media = await _fetch_media(context, draft.get("media", []))
        if isinstance(case_id, str) and (text or media):
            await services(context).intake.add_information(case_id, text, media, update_id=update.update_id)
    except Exception:
        # What was sent is kept, and "Done" can be pressed again.
        _LOG.exception("Information for case %s could not be saved", case_id)
        await say(update, context, _("Sorry, this could not be saved. Please try again in a moment."))
        return
    data.pop(ADD_CASE, None)
    data.pop(DRAFT, None)
    data.pop(STEP, None)
    if not isinstance(case_id, str) or (not text and not media):
        await say(update, context, _("Nothing was added."))
        return
    await _after_commit(context, update)
    await say(update, context, _("Thank you. It was added to your report."), keep=True)


async def _choose_language(update: Update, context: ContextTypes.DEFAULT_TYPE, locale: str) -> None:
    query = update.callback_query
    if locale not in SHIPPED_LOCALES:
        if query is not None:
            await acknowledge(query, translator(update, context).gettext("This button is no longer active."))
        return
    user_data(context)[LOCALE] = locale
    if query is not None:
        await acknowledge(query)
    t = get_translator(locale)
    await say(update, context, t.gettext("Language changed."))
    step = current_step(context)
    if (
        step is not None
        and step not in (Step.RECEIPT, Step.WITHDRAW, Step.ADD)
        and DRAFT in user_data(context)
    ):
        await ask(update, context, step)


# ------------------------------------------------------------------------------------------ groups, idle


async def start_in_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Someone starts a report in a group: tell them once, privately worded, to write to the bot directly."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.chat.type == ChatType.PRIVATE:
        return
    told: set[tuple[int, str]] = context.bot_data.setdefault("beacon.told_in_group", set())
    key = (message.chat_id, services(context).intake.pseudonym(user.id))
    if key in told:
        return
    told.add(key)
    _ = translator(update, context).gettext
    await message.reply_text(
        _("Please write to me in a private chat: {link}").format(link=f"https://t.me/{context.bot.username}")
    )


async def sweep_idle(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Wipes conversations idle for longer than the configured timeout (also after a restart)."""
    deadline = datetime.now(UTC) - services(context).idle_timeout
    for user_id, data in list(context.application.user_data.items()):
        seen = data.get(SEEN)
        if not isinstance(seen, str) or STEP not in data:
            continue
        try:
            idle = datetime.fromisoformat(seen) < deadline
        except ValueError:
            idle = True
        if not idle:
            continue
        ids = list(data.get(MESSAGES, []))
        receipt = data.get(RECEIPT_MESSAGE)
        if isinstance(receipt, int):
            ids.append(receipt)
        try:
            await delete_messages(context, user_id, sorted(set(ids)))
        except NetworkError as error:
            _LOG.warning("Idle conversation could not be wiped yet: %s", type(error).__name__)
            continue
        data.clear()
        context.application.mark_data_for_update_persistence(user_ids=user_id)
    await context.application.update_persistence()
