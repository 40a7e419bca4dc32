"""Watching over the coordinators' group: P1 escalations, and who joins or leaves the group.

A group can be infiltrated: admins are told privately whenever its membership changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.services.escalation import EscalationService
from handlers.coordinators.actions import casework, chat_translator, translator

_LOG = logging.getLogger(__name__)
ESCALATION_KEY = "beacon.escalation"
PRESENT = (
    ChatMemberStatus.OWNER,
    ChatMemberStatus.ADMINISTRATOR,
    ChatMemberStatus.MEMBER,
    ChatMemberStatus.RESTRICTED,
)


@dataclass
class EscalationContext:
    service: EscalationService
    # case id → (chat id, thread id) of its ticket, or None before the ticket exists
    ticket_of: Callable[[str], Awaitable[tuple[int, int | None] | None]]
    # Room in the coordinators' group's message budget for one more message (shared with the alerts).
    take_slot: Callable[[], bool] = lambda: True


async def escalate(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Re-alerts, in its topic, every P1 case nobody acknowledged in time, naming those on duty."""
    found = context.bot_data.get(ESCALATION_KEY)
    if not isinstance(found, EscalationContext):
        return
    for escalation in await found.service.due(allow=found.take_slot):
        where = await found.ticket_of(escalation.case_id)
        if where is None:
            continue  # the ticket itself is still on its way
        t = chat_translator(context, where[0])
        minutes = int(escalation.waited.total_seconds() // 60)
        names = ", ".join(escalation.on_duty) or t.gettext("nobody (use /duty on)")
        text = t.gettext(
            "⏰ P1 case {case_id} has waited {minutes} minutes and nobody has acknowledged it. "
            "On duty: {names}"
        ).format(case_id=escalation.case_id, minutes=minutes, names=names)
        try:
            await context.bot.send_message(where[0], text, message_thread_id=where[1])
        except TelegramError as error:
            _LOG.warning("Escalation of case %s not posted: %s", escalation.case_id, type(error).__name__)
        else:
            _LOG.info("Case %s escalated", escalation.case_id)


async def on_member_change(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tells the admins privately when someone joins or leaves the coordinators' group."""
    change = update.chat_member
    if change is None or change.chat.id not in await casework(context).chat_ids():
        return
    was = change.old_chat_member.status in PRESENT
    now = change.new_chat_member.status in PRESENT
    if was == now:
        return
    person = change.new_chat_member.user
    who = person.full_name + (f" (@{person.username})" if person.username else "") + f" [{person.id}]"
    t = translator(context)
    text = (
        t.gettext("{who} joined the coordinators' group.")
        if now
        else t.gettext("{who} left the coordinators' group.")
    ).format(who=who)
    _LOG.info("Coordinators' group membership changed")
    for admin in await casework(context).service.admins():
        try:
            await context.bot.send_message(admin, text)
        except TelegramError as error:
            _LOG.warning("An admin could not be told of a membership change: %s", type(error).__name__)
