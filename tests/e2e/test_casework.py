"""Caseworkers at work in the coordinators' forum group: every card button and staff command changes the
case and its card as intended, illegal moves are refused without effect, and every action lands in an
intact audit trail that holds no report text."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from bot.app import get_database, stop_application
from bot.domain.models import CaseStatus
from bot.domain.workflow import ClosingReason
from storage.workflow import StaffStore
from tests.e2e.casework_flow import (
    DONE,
    INACTIVE,
    NOT_ALLOWED,
    NOT_POSSIBLE,
    SENT_PRIVATELY,
    CaseState,
    audit_count,
    audit_rows,
    buttons,
    card_line,
    grant,
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
from tests.e2e.intake_flow import QUICK, Plan, add_information, case_by_receipt, fast_track, new_reporter
from tests.e2e.test_alert_delivery import LOW, thread_texts

REASONS = ["Rescued", "Escaped", "Duplicate", "Unreachable", "False report", "Withdrawn", "Cancel"]


def card_buttons(case_id: str, status: CaseStatus, *, assigned: bool) -> list[tuple[str, str]]:
    """The buttons a card should carry for a case in `status`."""
    first = [("↩️ Unassign", f"w:unassign:{case_id}")] if assigned else [("🙋 Claim", f"w:claim:{case_id}")]
    first.append(("🔒 Details", f"w:details:{case_id}"))
    if status is CaseStatus.CLOSED:
        return [*first, ("🔁 Reopen", f"w:status:{case_id}:acknowledged")]
    forward = {
        CaseStatus.NEW: [("➡️ Acknowledge", f"w:status:{case_id}:acknowledged")],
        CaseStatus.ACKNOWLEDGED: [("➡️ In contact", f"w:status:{case_id}:in_contact")],
        CaseStatus.IN_CONTACT: [("➡️ Referred", f"w:status:{case_id}:referred")],
        CaseStatus.REFERRED: [],
    }[status]
    return [*first, *forward, ("✖️ Close…", f"w:close:{case_id}")]


async def test_every_card_button_moves_the_case_and_redraws_its_card_in_place(harness: Harness) -> None:
    """Claim, each next status, Close… with Cancel, a closing reason, Reopen and Unassign each change the
    case as labelled and edit the one card in its topic to show the new state and the buttons that fit."""
    h = harness
    await quick(h)
    _, case_id = await open_case(h)
    admin = h.coordinator_id
    card = await the_card(h, case_id)
    card_id = card["message_id"]
    assert buttons(card) == card_buttons(case_id, CaseStatus.NEW, assigned=False)
    assert card_line(card, "Status:") == "Status: new"
    assert card_line(card, "Assigned to:") == "Assigned to: nobody"

    async def step(data: str, expected: CaseState, status_line: str, assigned: bool) -> None:
        answer = await press(h, admin, case_id, data)
        assert answer["text"] == DONE, data
        assert await state(h, case_id) == expected, data
        shown = await settled_card(h, case_id)
        assert shown["message_id"] == card_id, "the card is edited in place"
        assert card_line(shown, "Status:") == status_line, data
        assert buttons(shown) == card_buttons(case_id, expected.status, assigned=assigned), data

    await step(
        f"w:claim:{case_id}", CaseState(CaseStatus.ACKNOWLEDGED, admin, None), "Status: acknowledged", True
    )
    assert card_line(await the_card(h, case_id), "Assigned to:") == "Assigned to: Coordinator"
    await step(
        f"w:status:{case_id}:in_contact",
        CaseState(CaseStatus.IN_CONTACT, admin, None),
        "Status: in contact",
        True,
    )
    await step(
        f"w:status:{case_id}:referred", CaseState(CaseStatus.REFERRED, admin, None), "Status: referred", True
    )

    # Close… swaps the buttons for the closing reasons and changes nothing; Cancel brings them back.
    before = await the_card(h, case_id)
    answer = await press(h, admin, case_id, f"w:close:{case_id}")
    assert not answer["text"]
    reasons = await the_card(h, case_id)
    assert [label for label, _ in buttons(reasons)] == REASONS
    assert [data for _, data in buttons(reasons)] == [
        *(f"w:reason:{case_id}:{r.value}" for r in ClosingReason),
        f"w:cancel:{case_id}",
    ]
    assert reasons["text"] == before["text"]
    assert await state(h, case_id) == CaseState(CaseStatus.REFERRED, admin, None)
    answer = await press(h, admin, case_id, f"w:cancel:{case_id}")
    assert not answer["text"]
    assert buttons(await the_card(h, case_id)) == buttons(before)
    assert await state(h, case_id) == CaseState(CaseStatus.REFERRED, admin, None)

    await press(h, admin, case_id, f"w:close:{case_id}")
    await step(
        f"w:reason:{case_id}:rescued",
        CaseState(CaseStatus.CLOSED, admin, "rescued"),
        "Status: closed (Rescued)",
        True,
    )
    assert ("🔁 Reopen", f"w:status:{case_id}:acknowledged") in buttons(await the_card(h, case_id))
    await step(
        f"w:status:{case_id}:acknowledged",
        CaseState(CaseStatus.ACKNOWLEDGED, admin, None),
        "Status: acknowledged",
        True,
    )
    await step(
        f"w:unassign:{case_id}", CaseState(CaseStatus.ACKNOWLEDGED, None, None), "Status: acknowledged", False
    )
    assert card_line(await the_card(h, case_id), "Assigned to:") == "Assigned to: nobody"

    # One card in the topic, nothing else posted; every change is in the audit trail.
    assert len(await thread_texts(h.sb, h.group_id, await thread_of(h, case_id))) == 1
    trail = [(actor, action) for _, actor, action, case, _ in await audit_rows(h) if case == case_id]
    assert trail[1:] == [
        (admin, "claim"),
        (admin, "set_status"),
        (admin, "set_status"),
        (admin, "close"),
        (admin, "reopen"),
        (admin, "unassign"),
    ]


async def test_an_illegal_or_stale_button_is_refused_and_changes_nothing(harness: Harness) -> None:
    """An old "➡️ Acknowledge" pressed after the claim, a second claim by the holder and a claim of a
    closed case answer "This change is not possible now."; unknown cases and arguments are inactive.
    None of them changes the case, the card or the audit trail."""
    h = harness
    await quick(h)
    _, case_id = await open_case(h)
    admin = h.coordinator_id
    old_acknowledge = f"w:status:{case_id}:acknowledged"
    assert old_acknowledge in [data for _, data in buttons(await the_card(h, case_id))]
    assert (await press(h, admin, case_id, f"w:claim:{case_id}"))["text"] == DONE
    card = await settled_card(h, case_id)
    assert old_acknowledge not in [data for _, data in buttons(card)]

    async def refused(data: str, answer_text: str) -> None:
        before = (await state(h, case_id), await audit_count(h), await the_card(h, case_id))
        answer = await press(h, admin, case_id, data, forge=True)
        assert answer["text"] == answer_text, data
        await settled(h, case_id)
        after = (await state(h, case_id), await audit_count(h), await the_card(h, case_id))
        assert after == before, f"{data} changed something"

    await refused(old_acknowledge, NOT_POSSIBLE)
    await refused(f"w:claim:{case_id}", NOT_POSSIBLE)  # already the holder's
    await refused(f"w:reason:{case_id}:bored", INACTIVE)  # no such closing reason
    await refused(f"w:status:{case_id}:closed", NOT_POSSIBLE)  # closing needs a reason
    await refused(f"w:status:{case_id}:archived", INACTIVE)
    await refused(f"w:fly:{case_id}", INACTIVE)
    await refused("w:claim:ZZZZ-ZZZZ", INACTIVE)
    await refused(f"w:claim:{case_id}:x:y", INACTIVE)

    await press(h, admin, case_id, f"w:reason:{case_id}:escaped", forge=True)
    assert (await state(h, case_id)).status is CaseStatus.CLOSED
    await settled(h, case_id)
    await refused(f"w:claim:{case_id}", NOT_POSSIBLE)  # a closed case is reopened, not claimed
    await refused(f"w:reason:{case_id}:rescued", NOT_POSSIBLE)  # already closed
    await refused(f"w:status:{case_id}:in_contact", NOT_POSSIBLE)  # reopened only as acknowledged


async def test_queue_lists_open_cases_most_urgent_first_then_oldest_and_mine_only_the_callers(
    harness: Harness,
) -> None:
    """/queue lists every open case, P1 first, then by priority and age, closed ones left out; /mine
    lists only the open cases assigned to whoever asks."""
    h = harness
    await quick(h)
    _, p4_old = await open_case(h, QUICK)
    _, p3 = await open_case(h, LOW)
    _, closed = await open_case(h, LOW)
    receipt = await fast_track(await new_reporter(h), "Two men are being beaten right now")
    p1 = (await case_by_receipt(h, receipt["text"])).case_id
    _, p4_new = await open_case(h, QUICK)
    await settled(h, p1)
    admin = h.coordinator_id
    await press(h, admin, closed, f"w:close:{closed}")
    assert (await press(h, admin, closed, f"w:reason:{closed}:duplicate"))["text"] == DONE

    reply = await say(h, admin, "/queue")
    lines = reply["text"].split("\n")
    assert [line.split(" · ")[1] for line in lines] == [p1, p3, p4_old, p4_new]
    assert [line.split(" · ")[0] for line in lines] == ["P1", "P3", "P4", "P4"]
    assert lines[0].split(" · ")[2:4] == ["new", "Sen Sok (Phnom Penh)"]
    assert closed not in reply["text"]

    # /mine: the admin holds two cases, a coordinator one, a fresh coordinator none.
    zoe = await member(h, "Zoe")
    await grant(h, zoe, "coordinator")
    idle = await member(h, "Idle")
    await grant(h, idle, "coordinator")
    for case_id in (p4_new, p1):
        assert (await press(h, admin, case_id, f"w:claim:{case_id}"))["text"] == DONE
    assert (await press(h, zoe, p3, f"w:claim:{p3}"))["text"] == DONE
    mine = (await say(h, admin, "/mine")).get("text", "").split("\n")
    assert [line.split(" · ")[1] for line in mine] == [p1, p4_new]
    assert all(" · acknowledged · " in line for line in mine)
    mine = (await say(h, zoe, "/mine")).get("text", "").split("\n")
    assert [line.split(" · ")[1] for line in mine] == [p3]
    assert (await say(h, idle, "/mine", private=True))["text"] == "No open cases."


async def test_case_command_shows_the_card_with_its_buttons(harness: Harness) -> None:
    """/case ID (in the group or privately, any letter case) answers with the case's card and the buttons
    that fit its state, and those buttons work; an unknown id or a missing one is answered plainly."""
    h = harness
    await quick(h)
    _, case_id = await open_case(h)
    admin = h.coordinator_id
    await press(h, admin, case_id, f"w:claim:{case_id}")
    group_card = await settled_card(h, case_id)

    shown = await say(h, admin, f"/case {case_id}")
    assert shown["text"] == group_card["text"]
    assert buttons(shown) == card_buttons(case_id, CaseStatus.ACKNOWLEDGED, assigned=True)
    private = await say(h, admin, f"/case {case_id.lower()}", private=True)
    assert private["text"] == group_card["text"]
    assert buttons(private) == buttons(shown)

    # A button of the card shown privately acts on the case too.
    answer = await press(
        h, admin, case_id, f"w:status:{case_id}:in_contact", chat_id=admin, message_id=private["message_id"]
    )
    assert answer["text"] == DONE
    assert (await state(h, case_id)).status is CaseStatus.IN_CONTACT
    assert card_line(await settled_card(h, case_id), "Status:") == "Status: in contact"

    assert (await say(h, admin, "/case ZZZZ-ZZZZ"))["text"] == "There is no case with this id."
    usage = await say(h, admin, "/case")
    assert usage["text"].startswith("Send /case followed by the case id")


async def test_grant_lets_a_new_member_act_and_revoke_stops_them_at_once(harness: Harness) -> None:
    """A new member is refused until an admin's /grant USER_ID coordinator; then their claim works; after
    /revoke USER_ID their very next press is refused and changes nothing."""
    h = harness
    await quick(h)
    _, case_id = await open_case(h)
    admin = h.coordinator_id
    newcomer = await member(h, "Nadia")

    assert (await press(h, newcomer, case_id, f"w:claim:{case_id}"))["text"] == NOT_ALLOWED
    assert (await say(h, newcomer, "/queue"))["text"] == NOT_ALLOWED

    granted = await say(h, admin, f"/grant {newcomer} coordinator")
    assert granted["text"] == f"Done: {newcomer} is now coordinator."
    assert (await press(h, newcomer, case_id, f"w:claim:{case_id}"))["text"] == DONE
    assert await state(h, case_id) == CaseState(CaseStatus.ACKNOWLEDGED, newcomer, None)
    assert card_line(await settled_card(h, case_id), "Assigned to:") == "Assigned to: Nadia"
    assert case_id in (await say(h, newcomer, "/queue"))["text"]

    revoked = await say(h, admin, f"/revoke {newcomer}")
    assert revoked["text"] == f"Done: {newcomer} has no role now."
    audited = await audit_count(h)
    answer = await press(h, newcomer, case_id, f"w:status:{case_id}:in_contact")
    assert answer["text"] == NOT_ALLOWED
    assert answer["show_alert"]
    assert await state(h, case_id) == CaseState(CaseStatus.ACKNOWLEDGED, newcomer, None)
    assert await audit_count(h) == audited
    assert (await say(h, newcomer, "/queue"))["text"] == NOT_ALLOWED
    assert (await say(h, admin, f"/revoke {newcomer}"))["text"] == "Nothing to revoke."

    # Usage, and an admin cannot revoke themself.
    assert (await say(h, admin, "/grant")).get("text", "").startswith("Usage: /grant USER_ID")
    assert (await say(h, admin, f"/grant {newcomer} boss")).get("text", "").startswith("Usage: /grant")
    assert (await say(h, admin, "/revoke")).get("text", "").startswith("Usage: /revoke USER_ID")
    assert (await say(h, admin, f"/revoke {admin}"))["text"] == NOT_ALLOWED


async def test_grant_with_a_user_id_in_a_topic_opened_by_a_person_grants_that_user(
    harness: Harness,
) -> None:
    """/grant USER_ID ROLE sent in a forum topic a person opened grants USER_ID, not the topic's opener."""
    h = harness
    await quick(h)
    opener = await member(h, "Olga")
    newcomer = await member(h, "Nadia")
    topic = await h.sb.create_topic(h.group_id, "Staff room", from_user_id=opener)
    reply = await say(
        h, h.coordinator_id, f"/grant {newcomer} coordinator", thread_id=topic["message_thread_id"]
    )
    staff = StaffStore(get_database(h.app))
    roles = (await staff.role_of(newcomer), await staff.role_of(opener))
    assert (reply["text"], roles) == (f"Done: {newcomer} is now coordinator.", ("coordinator", None))


async def test_duty_on_and_off_and_staff_help_in_the_group(harness: Harness) -> None:
    """/duty on puts the caller on duty and /duty off takes them off (both audited); /help in the group
    lists the caseworkers' commands."""
    h = harness
    await quick(h)
    admin = h.coordinator_id
    staff = StaffStore(get_database(h.app))
    assert (await say(h, admin, "/duty on"))["text"] == "You are on duty."
    assert [uid for uid, _ in await staff.on_duty()] == [admin]
    assert (await say(h, admin, "/duty off"))["text"] == "You are off duty."
    assert await staff.on_duty() == []
    assert (await say(h, admin, "/duty"))["text"] == "You are on duty."
    duty = [(actor, details) for _, actor, action, _, details in await audit_rows(h) if action == "duty"]
    assert [actor for actor, _ in duty] == [admin] * 3
    assert ['"on":true' in d for _, d in duty] == [True, False, True]

    shown = (await say(h, admin, "/help"))["text"]
    for command in ("/queue", "/mine", "/case ID", "/duty on|off", "/grant USER_ID ROLE", "/revoke USER_ID"):
        assert command in shown


# --- the audit trail ---------------------------------------------------------------------------------

MARKER = "Qzmark"


async def _beacon_audit_verify(h: Harness) -> tuple[int, str]:
    """`python -m bot audit verify` on the harness's database, in its own process; (exit status, output)."""
    env = {
        **os.environ,
        "BEACON_DATABASE": str(h.settings.database),
        "BEACON_BOT_TOKEN": h.settings.bot_token.get_secret_value(),
        "BEACON_SECRET_KEY": h.settings.secret_key.get_secret_value(),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "audit",
        "verify",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=Path(h.settings.database).parent,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    return int(process.returncode or 0), output.decode()


async def test_beacon_audit_verify_finds_an_intact_chain_of_every_action_without_report_text(
    harness: Harness,
) -> None:
    """After claims, moves, closing, reopening, details, replies, duty, grants and revocations,
    `beacon audit verify` reports an intact chain holding an entry for each, and no audit row holds the
    report's words, the victim's identity, the reporter's account or a staff member's name; a row edited
    afterwards is named as the first broken link."""
    h = harness
    await quick(h)
    plan = Plan(
        victim=True,
        victim_name=f"{MARKER}name Victimova",
        victim_passport=f"{MARKER}PASS",
        victim_handle=f"@{MARKER}handle",
        place_text=f"{MARKER} compound, building Q",
        details=(f"{MARKER} they beat him at night",),
        contact="yes",
    )
    r, case_id = await open_case(h, plan, first_name=f"{MARKER}Reporter", username=f"{MARKER.lower()}_rep")
    await add_information(r, f"{MARKER} added later")
    admin = h.coordinator_id
    helper = await member(h, f"{MARKER}Helper", username=f"{MARKER.lower()}_helper")
    await grant(h, helper, "coordinator")

    assert (await press(h, helper, case_id, f"w:claim:{case_id}"))["text"] == DONE
    assert (await press(h, helper, case_id, f"w:status:{case_id}:in_contact"))["text"] == DONE
    assert (await press(h, admin, case_id, f"w:details:{case_id}"))["text"] == SENT_PRIVATELY
    reply = await say(h, helper, f"/reply {case_id} {MARKER} please call us")
    assert reply["text"] == "Sent to the reporter."
    await press(h, helper, case_id, f"w:close:{case_id}")
    assert (await press(h, helper, case_id, f"w:reason:{case_id}:rescued"))["text"] == DONE
    assert (await press(h, helper, case_id, f"w:status:{case_id}:acknowledged"))["text"] == DONE
    assert (await press(h, helper, case_id, f"w:unassign:{case_id}"))["text"] == DONE
    assert (await say(h, helper, "/duty on"))["text"] == "You are on duty."
    await revoke(h, helper)
    await settled(h, case_id)

    rows = await audit_rows(h)
    on_case = [(actor, action) for _, actor, action, case, _ in rows if case == case_id]
    assert on_case == [
        (None, "case_created"),
        (helper, "claim"),
        (helper, "set_status"),
        (admin, "view_details"),
        (helper, "reply"),
        (helper, "close"),
        (helper, "reopen"),
        (helper, "unassign"),
    ]
    staffing = [(actor, action) for _, actor, action, case, _ in rows if case is None]
    assert staffing == [(None, "grant"), (admin, "grant"), (helper, "duty"), (admin, "revoke")]
    trail = "\n".join(" ".join(str(field) for field in row) for row in rows)
    for secret in (MARKER, MARKER.lower(), "Victimova", "building Q", "beat him", "please call"):
        assert secret not in trail, f"{secret!r} in the audit trail"
    assert str(r.user_id) not in trail, "the reporter's account is in the audit trail"

    status, output = await _beacon_audit_verify(h)
    assert status == 0, output
    assert output.strip() == f"audit chain intact: {len(rows)} entries"

    # Tampering is found: stop the bot, lift the append-only guard, edit one entry.
    await stop_application(h.app)
    edited = next(entry_id for entry_id, _, action, _, _ in rows if action == "close")
    with sqlite3.connect(h.settings.database) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute(
            "UPDATE audit_log SET details = ? WHERE id = ?", ('{"from":"referred","to":"closed"}', edited)
        )
    status, output = await _beacon_audit_verify(h)
    assert status == 1, output
    assert output.strip().startswith(f"audit chain broken at entry {edited}:")
