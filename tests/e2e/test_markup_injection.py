"""HTML and Markdown typed by a reporter or a coordinator never becomes markup: Beacon sends plain text,
so the sandbox (which parses `parse_mode` as Telegram does) shows it literally, with no entities, and no
call fails with "can't parse entities"."""

from __future__ import annotations

from typing import Any

from handlers.intake.draft import Step
from tests.e2e.casework_flow import (
    DONE,
    SENT_PRIVATELY,
    grant,
    member,
    open_case,
    press,
    quick,
    say,
    settled_card,
    the_card,
    thread_of,
)
from tests.e2e.conftest import Harness, restart_bot
from tests.e2e.intake_flow import Plan, Walk, add_information, case_by_receipt, new_reporter

JSON = dict[str, Any]

# Every kind of markup Telegram knows, half-open tags, entities, a fake user link, Markdown of both
# dialects, an RTL override, a zero-width joiner and an emoji of two UTF-16 units (entity offsets count
# those). One line with single spaces: cards shorten whitespace. At most 100 characters: the passport
# number keeps 100.
INJECT = (
    '<b>B</b> <a href="tg://user?id=1">u</a> <code>c</code> &lt; &amp *x* _y_ '
    "[t](http://e) `z` <i>\u202eo\u200d🧭"
)
TAG = "<b>t</b>*x*_y_"  # one word: /tag takes one
NAME = '<b>Eve</b> <a href="tg://user?id=1">x</a> *y* _z_'  # Telegram names have at most 64 characters
FORMATTING = {
    "bold",
    "italic",
    "underline",
    "strikethrough",
    "spoiler",
    "code",
    "pre",
    "text_link",
    "text_mention",
    "blockquote",
    "expandable_blockquote",
    "custom_emoji",
}


def _entities(message: JSON) -> list[JSON]:
    return [*message.get("entities", []), *message.get("caption_entities", [])]


async def test_markup_in_every_free_text_field_is_shown_literally_everywhere(harness: Harness) -> None:
    """A report whose every free-text field (victim name, passport number, handle, place, details, a
    typed nationality, an addition) holds markup, a coordinator whose name holds markup, and a note, a
    tag, a /reply and a reply to the card holding markup: the full card, /case, the details, /notes and
    the relayed messages show the text exactly as typed (a tag, a code, refuses it); no bot message
    anywhere carries a formatting entity, and the bot made no call that Telegram refused for its markup."""
    h = harness
    h.settings = h.settings.model_copy(update={"group_detail": "full"})
    await restart_bot(h)
    await quick(h)
    assert len(INJECT) <= 100
    r = await new_reporter(h, "en", NAME)
    plan = Plan(
        victim=True,
        victim_name=INJECT,
        victim_passport=INJECT,
        victim_handle=INJECT,
        victim_photo=False,
        place_text=INJECT,
        details=(INJECT,),
        nationalities=(),
        contact="yes",
    )
    walk = Walk(r, plan)
    await walk.begin()
    await walk.until(Step.NATIONALITIES)
    assert (await r.send(INJECT))["text"] == "Noted. Send more, or press Done."
    await walk.until(Step.REVIEW, Step.NATIONALITIES)
    receipt = await walk.submit()
    case_id = (await case_by_receipt(h, receipt["text"])).case_id
    await add_information(r, INJECT)
    _r2, _other = await open_case(h, Plan(area="kh-poipet", place_text=None, contact="no"))

    coordinator = await member(h, NAME)
    await grant(h, coordinator, "coordinator")
    await say(h, coordinator, "/help", private=True)
    assert (await press(h, coordinator, case_id, f"w:claim:{case_id}"))["text"] == DONE
    assert (await say(h, coordinator, f"/note {case_id} {INJECT}"))["text"] == "Note added."
    # Tags are codes: one with markup is refused rather than stored.
    assert (await say(h, coordinator, f"/tag {case_id} {TAG}"))["text"] == "This change is not possible now."
    assert (await say(h, coordinator, f"/reply {case_id} {INJECT}"))["text"] == "Sent to the reporter."
    card = await the_card(h, case_id)
    thread = await thread_of(h, case_id)
    reply = await say(h, coordinator, f"{INJECT} 2", thread_id=thread, reply_to=card["message_id"])
    assert reply["text"] == "Sent to the reporter."

    card = await settled_card(h, case_id)
    lines = card["text"].split("\n")
    assert f"Place: {INJECT}" in lines
    assert f"Report: From: {INJECT} {INJECT}" in lines  # the typed nationality, then the details
    assert f"Added later: {INJECT}" in lines
    assert f"Person: {INJECT}, VN, {INJECT}" in lines
    assert f"Assigned to: {NAME}" in lines
    assert not any(line.startswith("Tags:") for line in lines)
    assert any(line.startswith("People held:") and line.endswith("From: —") for line in lines), lines
    assert (await say(h, coordinator, f"/case {case_id}"))["text"] == card["text"]

    assert (await press(h, coordinator, case_id, f"w:details:{case_id}"))["text"] == SENT_PRIVATELY
    details = await h.sb.wait_for_message(
        coordinator,
        bot_id=h.bot_id,
        predicate=lambda m: str(m.get("text", "")).startswith("Details of case"),
    )
    shown = details["text"].split("\n")
    for label in ("Name", "Passport number", "Their phone or account", "Place"):
        assert f"{label}: {INJECT}" in shown, label
    # The typed nationality names no country: it leads the details, then what was written there.
    assert f"Report: From: {INJECT}" in shown
    assert INJECT in shown
    assert f"Added later: {INJECT}" in shown
    notes = (await say(h, coordinator, f"/notes {case_id}"))["text"]
    assert notes.endswith(f": {INJECT}")
    relayed = [m.get("text") for m in await r.bot_messages()]
    assert f"Message from the team:\n\n{INJECT}" in relayed
    assert f"Message from the team:\n\n{INJECT} 2" in relayed

    chats = {
        "group": await h.sb.messages(h.group_id),
        "coordinator": await h.sb.messages(coordinator, bot_id=h.bot_id),
        "reporter": await h.sb.messages(r.user_id, bot_id=h.bot_id),
    }
    formatted = [
        (chat, message.get("text", message.get("caption")), entity["type"])
        for chat, messages in chats.items()
        for message in messages
        if message["from"]["is_bot"]
        for entity in _entities(message)
        if entity["type"] in FORMATTING
    ]
    assert formatted == []
    # The markup reached Telegram as text: the sandbox would have made entities of it with a parse_mode.
    assert any(INJECT in str(m.get("text", "")) for m in chats["group"] if m["from"]["is_bot"])
    refused = [call for call in await h.sb.calls(bot_id=h.bot_id) if not call["ok"]]
    assert [c for c in refused if "parse" in str(c["description"])] == []
    # A card refreshed to the same text is "not modified"; nothing else was refused.
    sending = [c for c in refused if c["method"].startswith(("send", "edit", "copy"))]
    assert [c for c in sending if "not modified" not in str(c["description"]).lower().replace("_", " ")] == []
