"""/export: analysts and admins get a case list as a file, in a private chat with the bot only.

``/export`` alone offers buttons (format, then the levels the person's role allows); ``/export csv
partner since=2026-01-01 status=open priority=1 country=KH area=kh-poipet indicator=WithholdsDocuments``
does it in one go. The file is sent with protect_content; the full level only age-encrypted.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain.export import ExportFormat, ExportLevel, FilterError, parse_filters
from bot.i18n import Translator
from bot.services.export import ExportRequest, ExportService, NeedsEncryption
from bot.services.export_sinks import ExportError, ExportTooLarge
from handlers.coordinators.actions import casework, in_place, refuse, reply_to, translator

__all__ = ["EXPORT_KEY", "ExportContext", "export_command", "on_export_button"]

_LOG = logging.getLogger(__name__)

EXPORT_KEY = "beacon.export"
_FILTER_KEYS = ("since", "until", "status", "priority", "country", "area", "indicator")
_EXAMPLE = "/export csv partner since=2026-01-01 status=open priority=1 country=KH"


@dataclass
class ExportContext:
    service: ExportService


def _service(context: ContextTypes.DEFAULT_TYPE) -> ExportService:
    found = context.bot_data.get(EXPORT_KEY)
    if not isinstance(found, ExportContext):
        raise RuntimeError("export is not configured")
    return found.service


def _level_label(t: Translator, level: ExportLevel) -> str:
    labels = {
        ExportLevel.FULL: t.gettext("Full (encrypted)"),
        ExportLevel.PARTNER: t.gettext("Partner"),
        ExportLevel.PUBLIC: t.gettext("Public (anonymous)"),
    }
    return labels[level]


async def export_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export [format] [level] [key=value ...]"""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    t = translator(context, update)
    if chat.type != ChatType.PRIVATE:
        if not await in_place(update, context):
            return  # like every staff command, silent in a group that is not the coordinators'
        await reply_to(
            update,
            t.gettext("Exports are sent only in a private chat with the bot. Write /export to me there."),
        )
        return
    service = _service(context)
    levels = await service.levels_for(user.id)
    if not levels:
        await refuse(update, context)
        return
    args = list(context.args or [])
    if not args:
        buttons = [
            InlineKeyboardButton(fmt.value.upper(), callback_data=f"x:{fmt.value}") for fmt in ExportFormat
        ]
        await reply_to(
            update,
            t.gettext("Choose a format. To filter, write for example:\n{example}").format(example=_EXAMPLE),
            InlineKeyboardMarkup([buttons]),
        )
        return
    try:
        request = _parse(args, context)
    except FilterError as error:
        await reply_to(
            update,
            t.gettext(
                "I could not read “{value}”.\n"
                "Formats: csv, jsonl, xlsx, geojson. Levels: full, partner, public.\n"
                "Filters: since, until, status, priority, country, area, indicator. For example:\n{example}"
            ).format(value=error.value, example=_EXAMPLE),
        )
        return
    await _run(update, context, request)


def _parse(args: list[str], context: ContextTypes.DEFAULT_TYPE) -> ExportRequest:
    fmt, level = ExportFormat.CSV, ExportLevel.PARTNER
    values: dict[str, list[str]] = {key: [] for key in _FILTER_KEYS}
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep:
            if key.lower() not in values:
                raise FilterError(f"unknown filter {key!r}", arg)
            values[key.lower()].append(value)
        elif arg.lower() in ExportFormat.__members__.values():
            fmt = ExportFormat(arg.lower())
        elif arg.lower() in ExportLevel.__members__.values():
            level = ExportLevel(arg.lower())
        else:
            raise FilterError(f"{arg!r} is not a format, a level or key=value", arg)
    gazetteer = casework(context).gazetteer
    filters = parse_filters(
        since=values["since"][-1] if values["since"] else None,
        until=values["until"][-1] if values["until"] else None,
        status=values["status"],
        priority=values["priority"],
        country=values["country"],
        area=values["area"],
        indicator=values["indicator"],
        known_areas=lambda area_id: gazetteer.area(area_id) is not None,
    )
    return ExportRequest(level=level, format=fmt, filters=filters)


async def on_export_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """x:<format> → level buttons; x:<format>:<level> → the export (re-checked: buttons can be forged)."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    t = translator(context, update)
    parts = (query.data or "").split(":")
    formats = {fmt.value: fmt for fmt in ExportFormat}
    levels = {level.value: level for level in ExportLevel}
    chat = update.effective_chat
    if (
        chat is None
        or chat.type != ChatType.PRIVATE
        or len(parts) not in (2, 3)
        or parts[1] not in formats
        or (len(parts) == 3 and parts[2] not in levels)
    ):
        await query.answer(t.gettext("This button is no longer valid."))
        return
    await query.answer()
    allowed = await _service(context).levels_for(user.id)
    if not allowed:
        await refuse(update, context)
        return
    fmt = formats[parts[1]]
    if len(parts) == 2:
        buttons = [
            InlineKeyboardButton(_level_label(t, level), callback_data=f"x:{fmt.value}:{level.value}")
            for level in allowed
        ]
        await reply_to(update, t.gettext("Choose a level:"), InlineKeyboardMarkup([[b] for b in buttons]))
        return
    await _run(update, context, ExportRequest(level=levels[parts[2]], format=fmt))


async def _run(update: Update, context: ContextTypes.DEFAULT_TYPE, request: ExportRequest) -> None:
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    t = translator(context, update)
    with contextlib.suppress(TelegramError):
        await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_DOCUMENT)
    try:
        made = await _service(context).export(user.id, request)
    except PermissionError:
        await refuse(update, context)
        return
    except NeedsEncryption:
        await reply_to(
            update,
            t.gettext(
                "The full level is sent only encrypted, and no recipient key is configured. "
                "Ask the administrator of this Beacon."
            ),
        )
        return
    except ExportTooLarge:
        await reply_to(
            update,
            t.gettext(
                "This export is larger than Telegram allows. Narrow it with filters, or ask the "
                "administrator to export it on the server."
            ),
        )
        return
    except (ExportError, OSError, RuntimeError, ValueError) as error:
        _LOG.warning("Export failed: %s", type(error).__name__)
        await reply_to(update, t.gettext("The export failed. Nothing was sent. Please try again later."))
        return
    summary = made.summary
    lines = [
        t.ngettext("{count} row.", "{count} rows.", summary.rows).format(count=summary.rows),
        t.gettext("Level: {level}.").format(level=_level_label(t, summary.level)),
    ]
    if summary.level is ExportLevel.PUBLIC:
        lines.append(
            t.ngettext(
                "{count} record left out to keep every group at least {k}.",
                "{count} records left out to keep every group at least {k}.",
                summary.suppressed,
            ).format(count=summary.suppressed, k=summary.k)
        )
    if made.encrypted:
        lines.append(t.gettext("Encrypted with age for the configured recipients."))
    try:
        await context.bot.send_document(
            chat.id,
            InputFile(made.content, filename=made.name),
            caption="\n".join(lines),
            protect_content=True,
        )
    except TelegramError as error:
        _LOG.warning("Export not sent: %s", type(error).__name__)
        await reply_to(update, t.gettext("The export failed. Nothing was sent. Please try again later."))
