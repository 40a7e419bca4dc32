"""Caseworkers' commands for notes, priority, tags, links and search, through the sandbox."""

from __future__ import annotations

from bot.domain.models import CaseStatus, Priority
from tests.e2e.casework_flow import member, open_case, quick, say, settled, settled_card, store
from tests.e2e.conftest import Harness


async def test_a_note_is_kept_encrypted_and_shown_only_to_staff(harness: Harness) -> None:
    """/note keeps an internal note, never in clear on disk; /notes shows it; outsiders are refused."""
    h = harness
    await quick(h)
    _r, case_id = await open_case(h)
    reply = await say(h, h.coordinator_id, f"/note {case_id} called the embassy ZQNOTE-41")
    assert reply["text"] == "Note added."
    listed = await say(h, h.coordinator_id, f"/notes {case_id}")
    assert "called the embassy ZQNOTE-41" in listed["text"]
    files = [h.settings.database, h.settings.database.with_name(h.settings.database.name + "-wal")]
    assert not any(b"ZQNOTE-41" in path.read_bytes() for path in files if path.exists())
    stranger = await member(h, "Stranger")
    refused = await say(h, stranger, f"/notes {case_id}")
    assert refused["text"] == "You are not allowed to do this."


async def test_priority_override_renames_the_topic_and_edits_the_card(harness: Harness) -> None:
    """/priority sets the priority by hand; the card and the topic name follow."""
    h = harness
    await quick(h)
    _r, case_id = await open_case(h)
    reply = await say(h, h.coordinator_id, f"/priority {case_id} P1 new_evidence")
    assert reply["text"] == "Priority changed."
    await settled(h, case_id)
    case = await store(h).get_case(case_id)
    assert case is not None
    assert case.priority is Priority.P1
    card = await settled_card(h, case_id)
    assert card["text"].startswith("🔴 P1")
    topics = next(c for c in (await h.sb.state())["chats"] if c["id"] == h.group_id)["topics"]
    assert any(t["name"].startswith(f"🔴 P1 · {case_id}") for t in topics)


async def test_tags_links_and_search(harness: Harness) -> None:
    """/tag labels the card, /link … duplicate closes the first case, /find filters by status and priority."""
    h = harness
    await quick(h)
    _r1, first = await open_case(h)
    _r2, second = await open_case(h)
    assert (await say(h, h.coordinator_id, f"/tag {first} kk-park"))["text"] == "Tag added."
    await settled(h, first)
    assert "Tags: kk-park" in (await settled_card(h, first))["text"]
    linked = await say(h, h.coordinator_id, f"/link {first} {second} duplicate")
    assert linked["text"] == "Cases linked."
    await settled(h, first)
    closed = await store(h).get_case(first)
    assert closed is not None
    assert closed.status is CaseStatus.CLOSED
    assert second in closed.linked_case_ids
    found = await say(h, h.coordinator_id, "/find status=closed")
    assert first in found["text"]
    assert second not in found["text"]
    usage = await say(h, h.coordinator_id, "/find nonsense")
    assert usage["text"].startswith("Usage: /find")
