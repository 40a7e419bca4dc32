"""/stats (figures and a chart), /hotspots, and the daily digest of open cases in the coordinators' group."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.domain.models import Priority
from bot.i18n import Translator
from bot.services.casework import NotAllowed
from bot.services.insight import AGE_BUCKETS, OLDER, InsightService
from handlers.coordinators.actions import casework, chat_translator, in_place, refuse, reply_to, translator
from handlers.coordinators.charts import render_chart

_LOG = logging.getLogger(__name__)
INSIGHT_KEY = "beacon.insight"


@dataclass
class InsightContext:
    service: InsightService


def insight(context: ContextTypes.DEFAULT_TYPE) -> InsightService:
    found = context.bot_data.get(INSIGHT_KEY)
    if not isinstance(found, InsightContext):
        raise RuntimeError("insight is not configured")
    return found.service


def _area_name(context: ContextTypes.DEFAULT_TYPE, area_id: str) -> str:
    area = casework(context).gazetteer.area(area_id)
    return area.name if area is not None else area_id


async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: figures for the last 30 days and a chart, because a shift lead would rather look than read."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None or not await in_place(update, context):
        return
    t = translator(context, update)
    _ = t.gettext
    try:
        figures = await insight(context).figures(user.id)
    except NotAllowed:
        await refuse(update, context)
        return
    by_priority = ", ".join(f"{p.name}: {figures.open_by_priority.get(p, 0)}" for p in Priority)
    text = "\n".join(
        [
            t.ngettext(
                "Last 30 days: {count} new case.", "Last 30 days: {count} new cases.", figures.total_new
            ).format(count=figures.total_new),
            _("Open now: {count} ({by_priority}).").format(count=figures.total_open, by_priority=by_priority),
        ]
    )
    areas = [(_area_name(context, spot.area_id), spot.open_cases) for spot in figures.hotspots]
    chart = render_chart(figures, _("New cases per day, last 30 days"), _("Open cases by area"), areas)
    try:
        await message.reply_photo(chart, caption=text)
    except TelegramError as error:
        _LOG.warning("Stats chart not sent: %s", type(error).__name__)
        await reply_to(update, text)


async def hotspots_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/hotspots: places by open cases and people reported held there, with their cases."""
    user = update.effective_user
    if user is None or not await in_place(update, context):
        return
    t = translator(context, update)
    try:
        spots = await insight(context).hotspots(user.id)
    except NotAllowed:
        await refuse(update, context)
        return
    if not spots:
        await reply_to(update, t.gettext("No open cases."))
        return
    lines = [
        t.gettext(
            "{area}: {cases} open, at least {people} people held, {linked} linked. Cases: {ids}"
        ).format(
            area=_area_name(context, spot.area_id),
            cases=spot.open_cases,
            people=spot.people_at_least,
            linked=spot.linked_cases,
            ids=", ".join(spot.case_ids[:6]) + (" …" if len(spot.case_ids) > 6 else ""),
        )
        for spot in spots
    ]
    await reply_to(update, "\n".join(lines))


def bucket_label(t: Translator, bucket: str) -> str:
    _ = t.gettext
    return {
        "under_1_day": lambda: _("under a day"),
        "1_to_3_days": lambda: _("1 to 3 days"),
        "3_to_7_days": lambda: _("3 to 7 days"),
        OLDER: lambda: _("over a week"),
    }[bucket]()


async def daily_digest(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Posts, once a day, the open cases by priority and age in the coordinators' group."""
    found = context.bot_data.get(INSIGHT_KEY)
    if not isinstance(found, InsightContext):
        return
    digest = await found.service.digest()
    for chat_id in (await casework(context).chat_ids())[-1:]:
        t = chat_translator(context, chat_id)
        lines = [t.gettext("Daily digest: open cases by age")]
        if not digest:
            lines.append(t.gettext("No open cases."))
        for priority in Priority:
            buckets = digest.get(priority)
            if not buckets:
                continue
            names = [name for name, _limit in AGE_BUCKETS] + [OLDER]
            parts = [f"{bucket_label(t, name)}: {buckets[name]}" for name in names if buckets.get(name)]
            lines.append(f"{priority.name}: " + ", ".join(parts))
        try:
            await context.bot.send_message(chat_id, "\n".join(lines))
        except TelegramError as error:
            _LOG.warning("Daily digest not posted: %s", type(error).__name__)
