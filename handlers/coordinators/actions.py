"""What caseworkers do: card buttons and commands in the coordinators' group (or privately with the bot).

Every action asks the casework service, which checks the actor's role at that moment. Anyone without a
role gets one short refusal and learns nothing about cases. Changes reach the card through the outbox.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.domain.gazetteer import Gazetteer
from bot.domain.models import CaseStatus, Condition, Priority
from bot.domain.records import Media
from bot.domain.workflow import ClosingReason, Role
from bot.i18n import SHIPPED_LOCALES, Translator, get_translator, native_name, negotiate_locale
from bot.services.casework import CaseworkService, NotAllowed, QueueRowLike, UnknownCase
from bot.services.media import UnsupportedMedia, sanitise_image, voice_note
from bot.services.relay import Delivery, RelayService, Sender
from handlers.common import language_keyboard, send_with_media, team_message
from handlers.coordinators.cards import (
    CARD_PREFIX,
    card_markup,
    card_text,
    closing_markup,
    format_time,
    status_label,
)
from handlers.intake.conversation import LOCALE

_LOG = logging.getLogger(__name__)
CASEWORK_KEY = "beacon.casework"


@dataclass
class CaseworkContext:
    """What the coordinators' handlers need, stored once in bot_data by the composition root."""

    service: CaseworkService
    gazetteer: Gazetteer
    locale: str
    timezone: ZoneInfo
    chat_ids: Callable[[], Awaitable[Sequence[int]]]  # the coordinators' chats where actions are accepted
    relay: RelayService
    # (chat id, thread id, message id) of a ticket card → its case id, for replies to a card.
    case_for_card: Callable[[int, int | None, int], Awaitable[str | None]]
    committed: Callable[[ContextTypes.DEFAULT_TYPE], None] | None = None
    full: bool = False  # BEACON_GROUP_DETAIL=full: cards show details too
    # Languages chosen with /language in coordinators' groups (chat id → locale), and how to keep one.
    chat_locales: dict[int, str] = field(default_factory=dict)
    save_chat_locale: Callable[[int, str], Awaitable[None]] | None = None


def casework(context: ContextTypes.DEFAULT_TYPE) -> CaseworkContext:
    found = context.bot_data.get(CASEWORK_KEY)
    if not isinstance(found, CaseworkContext):
        raise RuntimeError("casework is not configured")
    return found


def translator(context: ContextTypes.DEFAULT_TYPE, update: Update | None = None) -> Translator:
    """The language to answer staff in: in a private chat their own (chosen with /language, else their
    Telegram app's), in a group the group's (chosen with /language there), else BEACON_COORDINATOR_LOCALE.
    """
    work = casework(context)
    chat = update.effective_chat if update is not None else None
    if chat is None:
        return get_translator(work.locale)
    if chat.type != ChatType.PRIVATE:
        return chat_translator(context, chat.id)
    chosen = (context.user_data or {}).get(LOCALE)
    if isinstance(chosen, str) and chosen in SHIPPED_LOCALES:
        return get_translator(chosen)
    user = update.effective_user if update is not None else None
    return get_translator(negotiate_locale(user.language_code if user else None, work.locale))


def chat_translator(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> Translator:
    """The language of a coordinators' group (its /language choice, else BEACON_COORDINATOR_LOCALE)."""
    work = casework(context)
    return get_translator(work.chat_locales.get(chat_id, work.locale))


async def in_place(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Actions are accepted only in the coordinators' chats or in a private chat with the bot."""
    chat = update.effective_chat
    if chat is None:
        return False
    return chat.type == ChatType.PRIVATE or chat.id in await casework(context).chat_ids()


def _committed(context: ContextTypes.DEFAULT_TYPE) -> None:
    hook = casework(context).committed
    if hook is not None:
        hook(context)


async def on_card_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handles a card button: check the presser's role now, then claim, move, close or show details."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    _ = translator(context, update).gettext
    parts = (query.data or "").split(":")
    if len(parts) not in (3, 4) or parts[0] != CARD_PREFIX or not await in_place(update, context):
        await query.answer(_("This button is no longer active."))
        return
    verb, case_id = parts[1], parts[2]
    argument = parts[3] if len(parts) == 4 else ""
    ctx = casework(context)
    service = ctx.service
    try:
        await service.seen_as(user.id, user.first_name)
        if verb == "claim":
            await service.claim(user.id, case_id)
        elif verb == "unassign":
            await service.unassign(user.id, case_id)
        elif verb == "status":
            await service.set_status(user.id, case_id, CaseStatus(argument))
        elif verb == "close":
            await service.case(user.id, case_id)  # role check before showing the reasons
            if isinstance(query.message, Message):
                await query.message.edit_reply_markup(closing_markup(translator(context, update), case_id))
            await query.answer()
            return
        elif verb == "reason":
            await service.close(user.id, case_id, ClosingReason(argument))
        elif verb == "cancel":
            case = await service.case(user.id, case_id)
            if isinstance(query.message, Message):
                await query.message.edit_reply_markup(card_markup(translator(context, update), case))
            await query.answer()
            return
        elif verb == "details":
            await _send_details(update, context, case_id)
            return
        else:
            await query.answer(_("This button is no longer active."))
            return
    except NotAllowed:
        await query.answer(_("You are not allowed to do this."), show_alert=True)
        return
    except (UnknownCase, ValueError):
        await query.answer(_("This button is no longer active."))
        return
    except Exception as error:  # a refused transition (e.g. already in that state) or a storage failure
        _LOG.warning("Case action %s on %s failed: %s", verb, case_id, type(error).__name__)
        await query.answer(_("This change is not possible now."))
        return
    _LOG.info("Case %s: %s by staff", case_id, verb)
    await query.answer(_("Done."))
    _committed(context)


async def _send_details(update: Update, context: ContextTypes.DEFAULT_TYPE, case_id: str) -> None:
    """Sends a case's sensitive details privately to the authorised presser, protected from forwarding."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    t = translator(context, update)
    _ = t.gettext
    case, media = await casework(context).service.details(user.id, case_id)
    report = case.report
    lines = [_("Details of case {case_id}").format(case_id=case_id)]
    victim = report.victim
    facts = [
        (_("Name"), victim.name),
        (_("Passport number"), victim.passport_number),
        (_("Their phone or account"), victim.handle),
        (_("Last contact"), victim.last_contact.isoformat() if victim.last_contact else None),
        (_("Place"), report.place.details),
        (_("Report"), report.details),
    ]
    lines += [f"{label}: {value}" for label, value in facts if value]
    lines += [_("Added later: {text}").format(text=text) for text in case.additions]
    text = "\n".join(lines)
    try:
        for start in range(0, len(text), 4000):
            await context.bot.send_message(user.id, text[start : start + 4000], protect_content=True)
        place = report.place
        if place.latitude is not None and place.longitude is not None:
            await context.bot.send_location(user.id, place.latitude, place.longitude, protect_content=True)
        for item in media:
            await send_with_media(context.bot, user.id, "", item, protect_content=True)
    except Forbidden:
        await query.answer(_("Open a private chat with me first, then press Details again."), show_alert=True)
        return
    except TelegramError as error:
        _LOG.warning("Details of case %s not sent: %s", case_id, type(error).__name__)
        await query.answer(_("This change is not possible now."))
        return
    _LOG.info("Case %s: details sent privately to staff", case_id)
    await query.answer(_("Sent to you privately."))


# --- commands ---------------------------------------------------------------------------------------------


async def reply_to(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, reply_markup=markup)


async def refuse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply_to(update, translator(context, update).gettext("You are not allowed to do this."))


def _row_line(t: Translator, row: QueueRowLike, gazetteer: Gazetteer) -> str:
    area = gazetteer.area(row.area_id) if row.area_id else None
    age = row.created_at.strftime("%Y-%m-%d %H:%M")
    withdrawn = " ⚠️" if row.withdrawn else ""
    where = area.name if area else "—"
    return (
        f"P{row.priority.value} · {row.case_id} · {status_label(t, row.status)} · {where} · {age}{withdrawn}"
    )


async def queue_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/queue: open cases, most urgent first, then oldest."""
    await _list(update, context, mine=False)


async def mine_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mine: the open cases assigned to the caller."""
    await _list(update, context, mine=True)


async def _list(update: Update, context: ContextTypes.DEFAULT_TYPE, *, mine: bool) -> None:
    user = update.effective_user
    if user is None or not await in_place(update, context):
        return
    t = translator(context, update)
    ctx = casework(context)
    try:
        rows = await (ctx.service.mine(user.id) if mine else ctx.service.queue(user.id))
    except NotAllowed:
        await refuse(update, context)
        return
    if not rows:
        await reply_to(update, t.gettext("No open cases."))
        return
    await reply_to(update, "\n".join(_row_line(t, row, ctx.gazetteer) for row in rows))


async def case_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/case ID: the case's card, with its buttons."""
    user = update.effective_user
    if user is None or not await in_place(update, context):
        return
    t = translator(context, update)
    ctx = casework(context)
    args = context.args or []
    if len(args) != 1:
        await reply_to(update, t.gettext("Send /case followed by the case id, for example /case K7MX-Q9PT."))
        return
    try:
        case = await ctx.service.view_case(user.id, args[0].strip().upper())
    except NotAllowed:
        await refuse(update, context)
        return
    except UnknownCase:
        await reply_to(update, t.gettext("There is no case with this id."))
        return
    await reply_to(
        update, card_text(t, case, ctx.gazetteer, ctx.timezone, full=ctx.full), card_markup(t, case)
    )


async def grant_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/grant USER_ID ROLE (or in reply to someone's message): give a role."""
    await _grant_or_revoke(update, context, grant=True)


async def revoke_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/revoke USER_ID (or in reply): take a role away at once."""
    await _grant_or_revoke(update, context, grant=False)


async def _grant_or_revoke(update: Update, context: ContextTypes.DEFAULT_TYPE, *, grant: bool) -> None:
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None or not await in_place(update, context):
        return
    t = translator(context, update)
    _ = t.gettext
    args = list(context.args or [])
    target: int | None = None
    replied = message.reply_to_message
    if args and re.fullmatch(r"-?[0-9]+", args[0]):
        target = int(args.pop(0))  # an explicit id always wins
    elif (
        replied is not None
        and replied.forum_topic_created is None  # in a topic, every message "replies" to its opening
        and replied.from_user is not None
        and not replied.from_user.is_bot
    ):
        target = replied.from_user.id
    role: Role | None = None
    if grant:
        try:
            role = Role(args[-1].lower()) if args else None
        except ValueError:
            role = None
    if target is None or (grant and role is None):
        usage = (
            _(
                "Usage: /grant USER_ID coordinator|analyst|admin, "
                "or reply to the person's message with /grant ROLE."
            )
            if grant
            else _("Usage: /revoke USER_ID, or reply to the person's message with /revoke.")
        )
        await reply_to(update, usage)
        return
    service = casework(context).service
    try:
        if grant and role is not None:
            await service.grant(user.id, target, role)
            await reply_to(
                update, _("Done: {user_id} is now {role}.").format(user_id=target, role=role.value)
            )
        else:
            changed = await service.revoke(user.id, target)
            done = _("Done: {user_id} has no role now.").format(user_id=target)
            await reply_to(update, done if changed else _("Nothing to revoke."))
    except NotAllowed:
        await refuse(update, context)


async def duty_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/duty on|off: mark yourself on duty (mentioned when a P1 waits)."""
    user = update.effective_user
    if user is None or not await in_place(update, context):
        return
    _ = translator(context, update).gettext
    args = [a.lower() for a in (context.args or [])]
    on = not args or args[0] in ("on", "1", "yes")
    try:
        await casework(context).service.seen_as(user.id, user.first_name)
        await casework(context).service.duty(user.id, on)
    except NotAllowed:
        await refuse(update, context)
        return
    await reply_to(update, _("You are on duty.") if on else _("You are off duty."))


async def staff_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help in the coordinators' group: the caseworkers' commands."""
    if not await in_place(update, context):
        return
    _ = translator(context, update).gettext
    await reply_to(
        update,
        _(
            "/queue: open cases, most urgent first\n"
            "/mine: cases assigned to you\n"
            "/case ID: a case's card\n"
            "/find area=ID status=S priority=P1 indicator=C: search cases\n"
            "/note ID text, /notes ID: internal notes\n"
            "/priority ID P1 reason, /tag ID tag, /link ID OTHER [duplicate]\n"
            "/reply ID text, or reply to a card: a message to the reporter\n"
            "/duty on|off: be alerted when a P1 waits\n"
            "/grant USER_ID ROLE, /revoke USER_ID: roles (admins)\n"
            "/stats, /hotspots: figures and places\n"
            "/language: the language of this group's tickets\n"
            "/export: case lists as files (analysts and admins, in a private chat with the bot)\n"
            "Card buttons: claim, move the status, close with a reason, details (sent to you privately)."
        ),
    )


# --- relay ------------------------------------------------------------------------------------------------


def reporter_sender(context: ContextTypes.DEFAULT_TYPE) -> Sender:
    """Sends a team message to a reporter in the reporter's language, never naming the coordinator."""

    async def send(chat_id: int, text: str, language: str, media: Media | None) -> bool:
        t = get_translator(language if language in SHIPPED_LOCALES else casework(context).locale)
        try:
            await send_with_media(context.bot, chat_id, team_message(t, text), media)
        except (Forbidden, BadRequest):
            return False  # blocked the bot, or the chat is gone: held for the next /status
        return True

    return send


def _delivery_text(t: Translator, delivery: Delivery) -> str:
    _ = t.gettext
    return {
        Delivery.SENT: lambda: _("Sent to the reporter."),
        Delivery.HELD: lambda: _("Waiting: the reporter will see it the next time they open /status."),
        Delivery.UNREACHABLE: lambda: _(
            "The reporter cannot be reached now; they will see it when they check in."
        ),
        Delivery.NO_CONTACT: lambda: _("Not sent: the reporter asked not to be contacted."),
        Delivery.WITHDRAWN: lambda: _("Not sent: the reporter withdrew this report."),
    }[delivery]()


async def _relay(
    update: Update, context: ContextTypes.DEFAULT_TYPE, case_id: str, text: str, media: Media | None = None
) -> None:
    user = update.effective_user
    if user is None:
        return
    t = translator(context, update)
    try:
        delivery = await casework(context).relay.reply(
            user.id, case_id, text, reporter_sender(context), media
        )
    except NotAllowed:
        await refuse(update, context)
        return
    except UnknownCase:
        await reply_to(update, t.gettext("There is no case with this id."))
        return
    except ValueError:
        await reply_to(update, t.gettext("Send /reply followed by the case id and your message."))
        return
    _LOG.info("Case %s: reply from staff %s", case_id, delivery.value)
    await reply_to(update, _delivery_text(t, delivery))


async def reply_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reply ID text: relay a message to the case's reporter, following their contact preference."""
    message = update.effective_message
    if message is None or message.text is None or not await in_place(update, context):
        return
    parts = message.text.split(maxsplit=2)
    if len(parts) < 3:
        await reply_to(
            update,
            translator(context, update).gettext("Send /reply followed by the case id and your message."),
        )
        return
    await _relay(update, context, parts[1].strip().upper(), parts[2])


async def on_card_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in the coordinators' chat that replies to a ticket card goes to that case's reporter.

    Only an explicit reply to the card is relayed: other talk in a case's topic stays among the team.
    """
    message = update.effective_message
    replied = message.reply_to_message if message is not None else None
    if message is None or replied is None or not await in_place(update, context):
        return
    thread_id = message.message_thread_id if message.is_topic_message else None
    case_id = await casework(context).case_for_card(message.chat_id, thread_id, replied.message_id)
    if case_id is None:
        return
    media: Media | None = None
    try:
        if message.photo:
            data = await (await message.photo[-1].get_file()).download_as_bytearray()
            media = sanitise_image(bytes(data))
        elif message.voice is not None:
            data = await (await message.voice.get_file()).download_as_bytearray()
            media = voice_note(bytes(data), message.voice.mime_type)
    except (UnsupportedMedia, TelegramError) as error:
        _LOG.warning("Media for case %s not relayed: %s", case_id, type(error).__name__)
        await reply_to(
            update,
            translator(context, update).gettext("This file could not be relayed. Please send it as a photo."),
        )
        return
    text = message.text if message.text is not None else message.caption or ""
    if not text and media is None:
        await reply_to(
            update, translator(context, update).gettext("Only text, photos and voice notes can be relayed.")
        )
        return
    await _relay(update, context, case_id, text, media)


# --- case notes, priority, links, tags, search -------------------------------------------------------------


async def _staff_call(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    usage: str,
    call: Callable[[int, list[str]], Awaitable[str]],
) -> None:
    """Run a staff command: usage line on missing arguments, one refusal for the unauthorised."""
    user = update.effective_user
    if user is None or not await in_place(update, context):
        return
    t = translator(context, update)
    args = list(context.args or [])
    try:
        answer = await call(user.id, args)
    except NotAllowed:
        await refuse(update, context)
        return
    except UnknownCase:
        await reply_to(update, t.gettext("There is no case with this id."))
        return
    except (IndexError, ValueError, KeyError):
        await reply_to(update, usage)
        return
    except Exception as error:  # a refused move (e.g. the same tag twice) or a storage failure
        _LOG.warning("Staff command failed: %s", type(error).__name__)
        await reply_to(update, t.gettext("This change is not possible now."))
        return
    _committed(context)
    await reply_to(update, answer)


async def note_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/note ID text: an internal note on the case (encrypted, never shown to the reporter)."""
    t = translator(context, update)
    message = update.effective_message

    async def call(actor: int, args: list[str]) -> str:
        parts = (message.text or "").split(maxsplit=2) if message else []
        if len(parts) < 3:
            raise ValueError("usage")
        await casework(context).service.note(actor, parts[1].upper(), parts[2])
        return t.gettext("Note added.")

    await _staff_call(update, context, t.gettext("Usage: /note ID text"), call)


async def notes_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/notes ID: the case's internal notes, oldest first."""
    t = translator(context, update)
    ctx = casework(context)

    async def call(actor: int, args: list[str]) -> str:
        notes = await ctx.service.notes(actor, args[0].upper())
        if not notes:
            return t.gettext("No notes.")
        return "\n\n".join(f"{format_time(t, at, ctx.timezone)}: {text}" for at, _author, text in notes)

    await _staff_call(update, context, t.gettext("Usage: /notes ID"), call)


async def priority_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/priority ID P1..P4 reason: set the priority by hand, with a reason."""
    t = translator(context, update)

    async def call(actor: int, args: list[str]) -> str:
        if len(args) < 3:
            raise ValueError("usage")
        priority = Priority(int(args[1].upper().removeprefix("P")))
        await casework(context).service.override_priority(
            actor, args[0].upper(), priority, "_".join(args[2:])
        )
        return t.gettext("Priority changed.")

    await _staff_call(update, context, t.gettext("Usage: /priority ID P1|P2|P3|P4 reason"), call)


async def link_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/link ID OTHER [duplicate]: link two cases; "duplicate" closes the first in favour of the other."""
    t = translator(context, update)

    async def call(actor: int, args: list[str]) -> str:
        duplicate = len(args) > 2 and args[2].lower() in ("duplicate", "dup")
        await casework(context).service.link(actor, args[0].upper(), args[1].upper(), duplicate=duplicate)
        return t.gettext("Cases linked.")

    await _staff_call(update, context, t.gettext("Usage: /link ID OTHER_ID [duplicate]"), call)


async def tag_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tag ID tag: label a case."""
    t = translator(context, update)

    async def call(actor: int, args: list[str]) -> str:
        await casework(context).service.tag(actor, args[0].upper(), args[1])
        return t.gettext("Tag added.")

    await _staff_call(update, context, t.gettext("Usage: /tag ID tag"), call)


async def find_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/find area=ID status=STATUS priority=P1 indicator=CONDITION: search cases."""
    t = translator(context, update)
    ctx = casework(context)

    async def call(actor: int, args: list[str]) -> str:
        filters_given = dict(arg.split("=", 1) for arg in args)
        rows = await ctx.service.find(
            actor,
            status=CaseStatus(filters_given["status"]) if "status" in filters_given else None,
            priority=Priority(int(filters_given["priority"].upper().removeprefix("P")))
            if "priority" in filters_given
            else None,
            area_id=filters_given.get("area"),
            condition=Condition(filters_given["indicator"]) if "indicator" in filters_given else None,
        )
        if not rows:
            return t.gettext("No cases match.")
        return "\n".join(_row_line(t, row, ctx.gazetteer) for row in rows)

    usage = t.gettext("Usage: /find area=AREA_ID status=STATUS priority=P1 indicator=CONDITION (any of them)")
    await _staff_call(update, context, usage, call)


async def _may_set_group_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Only admins and coordinators, in a coordinators' group, choose that group's language."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type == ChatType.PRIVATE:
        return False
    if chat.id not in await casework(context).chat_ids():
        return False
    return await casework(context).service.role(user.id) in (Role.ADMIN, Role.COORDINATOR)


async def group_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/language in a coordinators' group: the language of its tickets, cards and answers."""
    t = translator(context, update)
    if not await _may_set_group_language(update, context):
        await reply_to(update, t.gettext("This command is not available here."))
        return
    await reply_to(
        update, t.gettext("Choose the language of this group's tickets:"), language_keyboard("gl:")
    )


async def on_group_language_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """gl:<locale>: keeps the group's language (checked again: buttons can be forged or pressed by anyone)."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return
    code = (query.data or "").removeprefix("gl:")
    if code not in SHIPPED_LOCALES or not await _may_set_group_language(update, context):
        await query.answer(translator(context, update).gettext("This button is no longer valid."))
        return
    work = casework(context)
    work.chat_locales[chat.id] = code
    if work.save_chat_locale is not None:
        await work.save_chat_locale(chat.id, code)
    await query.answer()
    t = get_translator(code)
    text = t.gettext("This group's tickets are now in {language}.").format(language=native_name(code))
    await reply_to(update, text)
