"""/export through the sandbox: a file in a private chat, by role and level, never in a group; audited."""

from __future__ import annotations

import csv
import io
import json

import pyrage

from tests.e2e.casework_flow import audit_rows, grant, member, open_case, quick, say, settled
from tests.e2e.conftest import Harness, restart_bot
from tests.e2e.intake_flow import Plan

POIPET = Plan(country="KH", area="kh-poipet", people="21-100")


async def _document(h: Harness, user_id: int, text: str) -> dict:
    """Send `text` privately and return the bot's next message that carries a document."""
    sent = await h.sb.send_text(user_id, text, bot_id=h.bot_id)
    return await h.sb.wait_for_message(
        user_id,
        bot_id=h.bot_id,
        after_message_id=sent["message"]["message_id"],
        predicate=lambda m: "document" in m,
        timeout=20,
    )


async def test_an_analyst_gets_a_partner_csv_privately_and_the_export_is_audited(harness: Harness) -> None:
    h = harness
    await quick(h)
    _r, case_id = await open_case(h, POIPET)
    await settled(h, case_id)
    analyst = await member(h, "Analyst")
    await grant(h, analyst, "analyst")

    message = await _document(h, analyst, "/export csv partner status=open country=KH")
    assert message["document"]["file_name"].startswith("beacon-partner-")
    assert message["document"]["file_name"].endswith(".csv")
    assert message["caption"].splitlines()[0] == "1 row."
    assert message.get("has_protected_content") is True
    content = (await h.sb.file_bytes(message["document"]["file_id"])).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [row["case_id"] for row in rows] == [case_id]
    assert rows[0]["area_id"] == "kh-poipet"
    assert "details" not in rows[0]  # no free text below the full level
    assert "latitude" not in rows[0]

    entry = (await audit_rows(h))[-1]
    assert entry[1] == analyst
    assert entry[2] == "export"
    details = json.loads(entry[4] or "{}")
    assert details["level"] == "partner"
    assert details["rows"] == 1
    assert details["via"] == "telegram"
    assert details["filter_country"] == "KH"


async def test_buttons_offer_only_the_levels_the_role_allows(harness: Harness) -> None:
    h = harness
    await quick(h)
    analyst = await member(h, "Analyst")
    await grant(h, analyst, "analyst")
    choose = await say(h, analyst, "/export", private=True)
    assert choose["text"].startswith("Choose a format.")
    formats = [b["callback_data"] for row in choose["reply_markup"]["inline_keyboard"] for b in row]
    assert formats == ["x:csv", "x:jsonl", "x:xlsx", "x:geojson"]
    await h.sb.press_button(analyst, choose["message_id"], data="x:xlsx", bot_id=h.bot_id)
    levels = await h.sb.wait_for_message(
        analyst,
        bot_id=h.bot_id,
        after_message_id=choose["message_id"],
        predicate=lambda m: "reply_markup" in m,
    )
    offered = [b["callback_data"] for row in levels["reply_markup"]["inline_keyboard"] for b in row]
    assert offered == ["x:xlsx:partner", "x:xlsx:public"]  # no full level for an analyst

    # A forged button for the full level is refused, not obeyed.
    mark = levels["message_id"]
    await h.sb.press_button(analyst, levels["message_id"], data="x:xlsx:full", bot_id=h.bot_id, forge=True)
    refusal = await h.sb.wait_for_message(analyst, bot_id=h.bot_id, after_message_id=mark)
    assert refusal["text"] == "You are not allowed to do this."
    assert "document" not in refusal


async def test_exports_are_refused_in_groups_and_to_people_without_the_role(harness: Harness) -> None:
    h = harness
    await quick(h)
    in_group = await say(h, h.coordinator_id, "/export csv partner")
    assert in_group["text"].startswith("Exports are sent only in a private chat with the bot.")
    coordinator = await member(h, "Coordinator Two")
    await grant(h, coordinator, "coordinator")
    assert (await say(h, coordinator, "/export", private=True))["text"] == "You are not allowed to do this."
    stranger = await member(h, "Stranger")
    assert (await say(h, stranger, "/export csv public", private=True))["text"] == (
        "You are not allowed to do this."
    )
    bad = await say(h, h.coordinator_id, "/export csv partner status=lost", private=True)
    assert bad["text"].startswith("I could not read “lost”.")


async def test_the_full_level_is_sent_only_encrypted_to_the_configured_recipients(harness: Harness) -> None:
    h = harness
    await quick(h)
    _r, case_id = await open_case(h, POIPET)
    await settled(h, case_id)
    refused = await say(h, h.coordinator_id, "/export jsonl full", private=True)
    assert refused["text"].startswith("The full level is sent only encrypted")

    identity = pyrage.x25519.Identity.generate()
    h.settings = h.settings.model_copy(update={"export_recipients": [str(identity.to_public())]})
    await restart_bot(h)
    message = await _document(h, h.coordinator_id, "/export jsonl full")
    assert message["document"]["file_name"].endswith(".jsonl.age")
    sealed = await h.sb.file_bytes(message["document"]["file_id"])
    assert case_id.encode() not in sealed
    records = [json.loads(line) for line in pyrage.decrypt(sealed, [identity]).decode().splitlines()]
    assert [record["case_id"] for record in records] == [case_id]
    assert "details" in records[0]
