"""Who may do what: every card button and every staff command, tried by each role (no role, analyst,
revoked coordinator, coordinator, admin). Refusals are short, change nothing and reveal nothing; the same
buttons and commands in a group that is not the coordinators' do nothing either."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import get_database
from bot.domain.models import CaseStatus
from storage.workflow import StaffStore
from tests.e2e.casework_flow import (
    DONE,
    INACTIVE,
    NOT_ALLOWED,
    SENT_PRIVATELY,
    CaseState,
    audit_count,
    buttons,
    grant,
    handled_so_far,
    member,
    open_case,
    press,
    quick,
    revoke,
    say,
    settled,
    settled_card,
    state,
    the_card,
    thread_of,
)
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import Plan
from tests.e2e.reporter import Reporter

JSON = dict[str, Any]
# Every verb a card button carries (with a valid argument where it takes one).
VERBS = (
    "claim",
    "unassign",
    "status:acknowledged",
    "status:in_contact",
    "status:referred",
    "close",
    "reason:rescued",
    "cancel",
    "details",
)
# Contact "yes": a relayed reply would reach the reporter at once, so a leak would show.


def data_of(verb: str, case_id: str) -> str:
    """A card button's callback data: "w:<verb>:<case id>[:<argument>]"."""
    name, _, argument = verb.partition(":")
    return f"w:{name}:{case_id}" + (f":{argument}" if argument else "")


REACHABLE = Plan(conditions=("wages_withheld",), contact="yes", details=("Zqsecret they beat him",))


async def _private_texts(h: Harness, user_id: int) -> list[str]:
    return [
        str(m.get("text", "")) for m in await h.sb.messages(user_id, bot_id=h.bot_id) if m["from"]["is_bot"]
    ]


async def _open_private_chat(h: Harness, user_id: int) -> JSON:
    """The member opens a private chat with the bot (so details could reach them); return its reply."""
    return await say(h, user_id, "/help", private=True)


async def _staff_member(h: Harness, role: str) -> int:
    """A group member with `role`: "none", "analyst", "coordinator", "revoked" (granted, then revoked) or
    "admin" (the one from BEACON_ADMINS)."""
    if role == "admin":
        return h.coordinator_id
    actor = await member(h, f"Actor {role}")
    if role in ("analyst", "coordinator", "revoked"):
        await grant(h, actor, "analyst" if role == "analyst" else "coordinator")
    return actor


async def _reporter_texts(r: Reporter) -> list[str]:
    return [str(m.get("text", "")) for m in await r.bot_messages()]


@pytest.mark.parametrize("role", ["none", "analyst", "revoked"])
async def test_every_button_and_command_is_refused_without_effect(harness: Harness, role: str) -> None:
    """Without a role (never granted, analyst only, or revoked), every card button answers "You are not
    allowed to do this." and every staff command replies so, in the group and privately: the case's status
    and assignee, its card, the roles, the duty list and the audit trail stay as they were, nothing reaches
    the reporter and no case data reaches the member."""
    h = harness
    await quick(h)
    r, case_id = await open_case(h, REACHABLE)
    admin = h.coordinator_id
    await _open_private_chat(h, admin)
    actor = await _staff_member(h, role)
    bystander = await member(h, "Bystander")
    await grant(h, bystander, "coordinator")
    private_start = await _open_private_chat(h, actor)
    holder = admin
    if role == "revoked":
        # They took the case while they could; it stays theirs after the revocation.
        assert (await press(h, actor, case_id, f"w:claim:{case_id}"))["text"] == DONE
        await revoke(h, actor)
        holder = actor
    else:
        assert (await press(h, admin, case_id, f"w:claim:{case_id}"))["text"] == DONE
    await settled(h, case_id)
    staff = StaffStore(get_database(h.app))

    async def snapshot() -> tuple[Any, ...]:
        card = await the_card(h, case_id)
        return (
            await state(h, case_id),
            await audit_count(h),
            card["text"],
            buttons(card),
            [(uid, role, duty) for uid, role, _, duty in await staff.staff()],
            await _private_texts(h, actor),
            await _reporter_texts(r),
        )

    before = await snapshot()
    assert before[0] == CaseState(CaseStatus.ACKNOWLEDGED, holder, None)

    for verb in VERBS:
        data = data_of(verb, case_id)
        answer = await press(h, actor, case_id, data, forge=True)
        assert (answer["text"], answer["show_alert"]) == (NOT_ALLOWED, True), data
        await settled(h, case_id)
        assert await snapshot() == before, f"{data} by {role} changed something"
    # The same from a bot message in their private chat.
    answer = await press(
        h,
        actor,
        case_id,
        f"w:claim:{case_id}",
        forge=True,
        chat_id=actor,
        message_id=private_start["message_id"],
    )
    assert answer["text"] == NOT_ALLOWED

    thread = await thread_of(h, case_id)
    card_id = (await the_card(h, case_id))["message_id"]
    commands = (
        "/queue",
        "/mine",
        f"/case {case_id}",
        f"/grant {actor} coordinator",
        f"/grant {bystander} admin",
        f"/revoke {bystander}",
        "/duty on",
        f"/reply {case_id} Zqreply hello",
    )
    for command in commands:
        reply = await say(h, actor, command)
        assert reply["text"] == NOT_ALLOWED, command
        reply = await say(h, actor, command, private=True)
        assert reply["text"] == NOT_ALLOWED, f"{command} (privately)"
    reply = await say(h, actor, "Zqreply to the card", thread_id=thread, reply_to=card_id)
    assert reply["text"] == NOT_ALLOWED, "a reply to the card"
    await handled_so_far(h, actor)
    await settled(h, case_id)

    after = await snapshot()
    assert after[:5] == before[:5], f"a command by {role} changed something"
    assert after[6] == before[6], "the reporter was written to"
    assert set(after[5]) <= {*before[5], NOT_ALLOWED}, "the member got more than refusals privately"
    assert await staff.on_duty() == []
    leaked = "\n".join(after[5])
    assert case_id not in leaked
    assert "Zqsecret" not in leaked


@pytest.mark.parametrize("role", ["coordinator", "admin"])
async def test_every_button_and_command_works_for_caseworkers(harness: Harness, role: str) -> None:
    """A coordinator and an admin can use every card button and every casework command (claim, unassign,
    each status, close with a reason, reopen, details privately, /queue, /mine, /case, /duty, /reply, a
    reply to the card); only an admin may /grant and /revoke."""
    h = harness
    await quick(h)
    r, case_id = await open_case(h, REACHABLE)
    await _open_private_chat(h, h.coordinator_id)
    actor = await _staff_member(h, role)
    other = await member(h, "Other")
    await _open_private_chat(h, actor)

    steps = [
        ("claim", DONE, CaseState(CaseStatus.ACKNOWLEDGED, actor, None)),
        ("unassign", DONE, CaseState(CaseStatus.ACKNOWLEDGED, None, None)),
        ("claim", DONE, CaseState(CaseStatus.ACKNOWLEDGED, actor, None)),
        ("status:in_contact", DONE, CaseState(CaseStatus.IN_CONTACT, actor, None)),
        ("status:referred", DONE, CaseState(CaseStatus.REFERRED, actor, None)),
        ("close", None, CaseState(CaseStatus.REFERRED, actor, None)),
        ("cancel", None, CaseState(CaseStatus.REFERRED, actor, None)),
        ("close", None, CaseState(CaseStatus.REFERRED, actor, None)),
        ("reason:rescued", DONE, CaseState(CaseStatus.CLOSED, actor, "rescued")),
        ("status:acknowledged", DONE, CaseState(CaseStatus.ACKNOWLEDGED, actor, None)),
        ("details", SENT_PRIVATELY, CaseState(CaseStatus.ACKNOWLEDGED, actor, None)),
    ]
    for verb, answer_text, expected in steps:
        answer = await press(h, actor, case_id, data_of(verb, case_id))
        assert (answer["text"] or None) == answer_text, verb
        assert await state(h, case_id) == expected, verb
    details = await h.sb.wait_for_message(
        actor, bot_id=h.bot_id, predicate=lambda m: str(m.get("text", "")).startswith("Details of case")
    )
    assert case_id in details["text"]
    assert "Zqsecret they beat him" in details["text"]
    assert details.get("has_protected_content") is True
    assert "Status: acknowledged" in (await settled_card(h, case_id))["text"]

    assert case_id in (await say(h, actor, "/queue"))["text"]
    assert case_id in (await say(h, actor, "/mine"))["text"]
    assert (await say(h, actor, f"/case {case_id}"))["text"] == (await the_card(h, case_id))["text"]
    assert (await say(h, actor, "/duty on"))["text"] == "You are on duty."
    assert (await say(h, actor, f"/reply {case_id} Zqreply one"))["text"] == "Sent to the reporter."
    card_id = (await the_card(h, case_id))["message_id"]
    thread = await thread_of(h, case_id)
    reply = await say(h, actor, "Zqreply two", thread_id=thread, reply_to=card_id)
    assert reply["text"] == "Sent to the reporter."
    relayed = [t for t in await _reporter_texts(r) if "Zqreply" in t]
    assert relayed == ["Message from the team:\n\nZqreply one", "Message from the team:\n\nZqreply two"]

    staff = StaffStore(get_database(h.app))
    granted = await say(h, actor, f"/grant {other} analyst")
    revoked = await say(h, actor, f"/revoke {other}")
    if role == "admin":
        assert granted["text"] == f"Done: {other} is now analyst."
        assert revoked["text"] == f"Done: {other} has no role now."
    else:
        assert granted["text"] == NOT_ALLOWED
        assert revoked["text"] == NOT_ALLOWED
    assert await staff.role_of(other) is None


async def test_buttons_and_commands_in_another_group_do_nothing(harness: Harness) -> None:
    """In a group that is not the coordinators' (the bot is a member), card buttons pressed even by an
    admin answer "This button is no longer active." and change nothing, and staff commands get no answer
    carrying case data, there or privately."""
    h = harness
    await quick(h)
    r, case_id = await open_case(h, REACHABLE)
    admin = h.coordinator_id
    coordinator = await member(h, "Cora")
    await grant(h, coordinator, "coordinator")
    lounge = await h.sb.create_group(
        "Lounge",
        forum=False,
        members=[admin, coordinator],
        bots=[{"bot_id": h.bot_id, "admin": False}],
    )
    lounge_id = int(lounge["id"])
    # Some bot message in the other group to press buttons on.
    bait = await say(h, admin, "/ping@beacon_test_bot", chat_id=lounge_id)
    await settled(h, case_id)

    async def snapshot() -> tuple[Any, ...]:
        return (
            await state(h, case_id),
            await audit_count(h),
            (await the_card(h, case_id))["text"],
            await _private_texts(h, admin),
            await _private_texts(h, coordinator),
            await _reporter_texts(r),
        )

    before = await snapshot()
    for actor in (admin, coordinator):
        for verb in VERBS:
            data = data_of(verb, case_id)
            answer = await press(
                h, actor, case_id, data, forge=True, chat_id=lounge_id, message_id=bait["message_id"]
            )
            assert answer["text"] == INACTIVE, data
        for command in (
            "/queue",
            "/mine",
            f"/case {case_id}",
            "/duty on",
            f"/reply {case_id} Zqreply hello",
            f"/grant {coordinator} admin",
            f"/revoke {coordinator}",
            "/help",
        ):
            await h.sb.send_text(actor, command, chat_id=lounge_id)
        await h.sb.send_text(
            actor, "Zqreply to the bot", chat_id=lounge_id, reply_to_message_id=bait["message_id"]
        )
        await handled_so_far(h, actor, chat_id=lounge_id)
    await settled(h, case_id)

    assert await snapshot() == before
    said = [str(m.get("text", "")) for m in await h.sb.messages(lounge_id) if m["from"]["is_bot"]]
    assert set(said) == {"This command is not available here."}, said
    assert await StaffStore(get_database(h.app)).on_duty() == []
