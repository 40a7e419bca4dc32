"""Shift leads' views: /stats with a chart, /hotspots, and the daily digest, through the sandbox."""

from __future__ import annotations

from telegram.ext import CallbackContext

from handlers.coordinators.insight import daily_digest
from tests.e2e.casework_flow import member, open_case, quick, say, settled
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import Plan

POIPET = Plan(country="KH", area="kh-poipet", people="21-100")


async def test_stats_answers_with_figures_and_a_chart(harness: Harness) -> None:
    """/stats replies with a PNG chart whose caption counts new and open cases; outsiders are refused."""
    h = harness
    await quick(h)
    _r, case_id = await open_case(h, POIPET)
    await settled(h, case_id)
    mark = max(m["message_id"] for m in await h.sb.messages(h.group_id))
    await h.sb.send_text(h.coordinator_id, "/stats", chat_id=h.group_id)
    chart = await h.sb.wait_for_message(h.group_id, after_message_id=mark, predicate=lambda m: "photo" in m)
    assert chart["caption"].startswith("Last 30 days: 1 new case.")
    assert "Open now: 1" in chart["caption"]
    png = await h.sb.file_bytes(chart["photo"][-1]["file_id"])
    assert png.startswith(b"\x89PNG")
    stranger = await member(h, "Stranger")
    assert (await say(h, stranger, "/stats"))["text"] == "You are not allowed to do this."


async def test_hotspots_list_places_by_open_cases_and_people_held(harness: Harness) -> None:
    """/hotspots names the area with the most open cases first, with people held and its case ids."""
    h = harness
    await quick(h)
    _r1, first = await open_case(h, POIPET)
    _r2, second = await open_case(h, POIPET)
    reply = await say(h, h.coordinator_id, "/hotspots")
    top = reply["text"].splitlines()[0]
    assert top.startswith("Poipet: 2 open, at least 42 people held")
    assert first in top
    assert second in top


async def test_the_daily_digest_counts_open_cases_by_priority_and_age(harness: Harness) -> None:
    """The digest job posts open cases by priority and age bucket in the coordinators' group."""
    h = harness
    await quick(h)
    _r, case_id = await open_case(h, POIPET)
    await settled(h, case_id)
    mark = max(m["message_id"] for m in await h.sb.messages(h.group_id))
    await daily_digest(CallbackContext(h.app))
    digest = await h.sb.wait_for_message(
        h.group_id, after_message_id=mark, predicate=lambda m: m.get("text", "").startswith("Daily digest")
    )
    assert "under a day: 1" in digest["text"]
