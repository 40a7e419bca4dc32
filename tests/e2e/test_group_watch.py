"""Watching over the coordinators' group: admins hear of joins and leaves; a waiting P1 is re-alerted."""

from __future__ import annotations

from datetime import timedelta

from telegram.ext import CallbackContext

from bot.services.escalation import EscalationService
from handlers.coordinators.watch import ESCALATION_KEY, EscalationContext, escalate
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import case_by_receipt, fast_track, new_reporter


async def test_admins_are_told_privately_when_someone_joins_or_leaves_the_group(harness: Harness) -> None:
    """A newcomer joining and leaving the coordinators' group is reported to the admin in a private chat."""
    h = harness
    await h.sb.set_limits(enabled=False)
    # The admin must have opened a private chat with the bot for it to write there.
    await h.sb.send_text(h.coordinator_id, "/help", bot_id=h.bot_id)
    await h.sb.wait_for_message(h.coordinator_id, bot_id=h.bot_id)
    newcomer = await h.sb.create_user("Newcomer", username="new_person")
    await h.sb.set_member(h.group_id, newcomer["id"], "member")
    joined = await h.sb.wait_for_message(
        h.coordinator_id, bot_id=h.bot_id, predicate=lambda m: "joined" in m.get("text", "")
    )
    assert "Newcomer (@new_person)" in joined["text"]
    await h.sb.set_member(h.group_id, newcomer["id"], "left")
    left = await h.sb.wait_for_message(
        h.coordinator_id, bot_id=h.bot_id, predicate=lambda m: "left the coordinators" in m.get("text", "")
    )
    assert str(newcomer["id"]) in left["text"]


async def test_an_unacknowledged_p1_is_re_alerted_in_its_topic_naming_those_on_duty(harness: Harness) -> None:
    """Past the limit, the escalation job posts a reminder in the case's topic naming those on duty."""
    h = harness
    await h.sb.set_limits(enabled=False)
    await h.sb.send_text(h.coordinator_id, "/duty on", chat_id=h.group_id)
    await h.sb.wait_for_message(h.group_id, predicate=lambda m: "on duty" in m.get("text", ""))
    receipt = await fast_track(await new_reporter(h), "They are beating people now")
    case_id = (await case_by_receipt(h, receipt["text"])).case_id
    context = h.app.bot_data[ESCALATION_KEY]
    assert isinstance(context, EscalationContext)
    # The configured limit is minutes; a zero limit makes every waiting P1 due now.
    service = context.service
    h.app.bot_data[ESCALATION_KEY] = EscalationContext(
        EscalationService(service.cases, service.roster, timedelta(0)), context.ticket_of
    )

    async def ticket() -> object:
        return await context.ticket_of(case_id)

    where = await h.sb.wait_until(ticket, timeout=15)
    await escalate(_job_context(h))
    reminder = await h.sb.wait_for_message(
        h.group_id, thread_id=where[1], predicate=lambda m: "⏰" in m.get("text", "")
    )
    assert case_id in reminder["text"]
    assert "Coordinator" in reminder["text"]


def _job_context(h: Harness) -> CallbackContext:  # type: ignore[type-arg]
    return CallbackContext(h.app)
