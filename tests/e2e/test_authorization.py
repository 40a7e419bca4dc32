"""Who may do what: every card button and every staff command, tried by each role (no role, analyst,
revoked coordinator, coordinator, admin). Refusals are short, change nothing and reveal nothing; the same
buttons and commands in a group that is not the coordinators' do nothing either.

The matrix below names every command and every kind of button the Application registers;
`test_the_matrix_names_every_command_and_button_the_bot_registers` fails when a new one is added
without a row here (and so without being tried by every role)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler

from bot.app import build_application, get_database
from bot.config import load_settings
from bot.domain.models import CaseStatus, Priority
from bot.keys import generate_secret_key
from handlers.coordinators import actions
from handlers.coordinators.actions import CASEWORK_KEY, CaseworkContext
from handlers.fallback import unknown_button
from storage.workflow import StaffStore
from tests.e2e.casework_flow import (
    DONE,
    ELSEWHERE,
    INACTIVE,
    NOT_ALLOWED,
    SENT_PRIVATELY,
    CaseState,
    audit_count,
    buttons,
    grant,
    handled_so_far,
    last_message_id,
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
from tests.e2e.conftest import Harness, handled_everything_sent, make_token
from tests.e2e.intake_flow import Plan, store
from tests.e2e.reporter import Reporter

JSON = dict[str, Any]
NOT_VALID = "This button is no longer valid."

# --- the authorization matrix ------------------------------------------------------------------------
ROLES = ("none", "analyst", "revoked", "coordinator", "admin")
CASEWORK = frozenset({"coordinator", "admin"})
ADMINS = frozenset({"admin"})
EXPORTERS = frozenset({"analyst", "admin"})
# Staff commands, in the coordinators' group and privately: the roles they work for; every other role
# (none and revoked included) gets "You are not allowed to do this." and nothing changes.
STAFF_COMMANDS: dict[str, frozenset[str]] = {
    "queue": CASEWORK,
    "mine": CASEWORK,
    "case": CASEWORK,
    "find": CASEWORK,
    "note": CASEWORK,
    "notes": CASEWORK,
    "priority": CASEWORK,
    "tag": CASEWORK,
    "link": CASEWORK,
    "reply": CASEWORK,
    "duty": CASEWORK,
    "stats": CASEWORK,
    "hotspots": CASEWORK,
    "grant": ADMINS,
    "revoke": ADMINS,
    "export": EXPORTERS,
}
# Answered in a private chat only: in any group they point to the private chat (or stay silent).
PRIVATE_ONLY = frozenset({"export"})
# In the coordinators' group: /language (the group's ticket language) for caseworkers, /help (the staff's
# command list, no case data) for every member; privately both are the reporter's.
GROUP_COMMANDS: dict[str, frozenset[str]] = {"language": CASEWORK, "help": frozenset(ROLES)}
# The reporter's own commands: anyone, in a private chat (tests/e2e/test_intake_*.py); in a group only
# /start answers, with a pointer to the private chat.
REPORTER_COMMANDS = frozenset({"start", "x", "language", "help", "status", "add", "delete"})
# Every callback-data prefix: who its buttons work for. Reporter buttons ("s" steps, "l" languages) work
# only in the presser's own private chat; pressed in a group they are refused as forged.
BUTTONS: dict[str, frozenset[str]] = {
    "s": frozenset({"reporter"}),
    "l": frozenset({"reporter"}),
    "w": CASEWORK,
    "x": EXPORTERS,
    "gl": CASEWORK,
}
# Messages that are not commands but act on cases: a reply to a ticket card is relayed to the reporter.
STAFF_MESSAGES: dict[str, frozenset[str]] = {"on_card_reply": CASEWORK}
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


def staff_command(name: str, case_id: str, bystander: int, other_id: str) -> str:
    """An invocation of the staff command `name` that would work (or change something) if allowed."""
    return {
        "queue": "/queue",
        "mine": "/mine",
        "case": f"/case {case_id}",
        "find": "/find status=acknowledged",
        "note": f"/note {case_id} Zqnote seen at the gate",
        "notes": f"/notes {case_id}",
        "priority": f"/priority {case_id} P1 escalated_by_phone",
        "tag": f"/tag {case_id} zqtag",
        "link": f"/link {case_id} {other_id}",
        "reply": f"/reply {case_id} Zqreply hello",
        "duty": "/duty on",
        "stats": "/stats",
        "hotspots": "/hotspots",
        "grant": f"/grant {bystander} admin",
        "revoke": f"/revoke {bystander}",
        "export": "/export csv partner",
    }[name]


def _settings_for_inspection(tmp_path: Path) -> Any:
    return load_settings(
        _env_file=None,
        bot_token=SecretStr(make_token()),
        api_url="http://127.0.0.1:9",
        database=tmp_path / "beacon.db",
        secret_key=generate_secret_key(),
        coordinator_chat_id=-100_123,
        admins=[1],
    )


def _prefixes(pattern: re.Pattern[str]) -> set[str]:
    """The callback-data prefixes a CallbackQueryHandler pattern like "^(s|l):" or "^w:" accepts."""
    shape = re.fullmatch(r"\^\(?([a-z|]+)\)?:", pattern.pattern)
    assert shape, f"a callback pattern this meta-test cannot read: {pattern.pattern!r}"
    return set(shape.group(1).split("|"))


def _card_verbs() -> set[str]:
    """Every verb `on_card_button` acts on, read from its source (`verb == "..."`)."""
    tree = ast.parse(inspect.getsource(actions.on_card_button))
    return {
        comparator.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "verb"
        for comparator in node.comparators
        if isinstance(comparator, ast.Constant) and isinstance(comparator.value, str)
    }


def test_the_matrix_names_every_command_and_button_the_bot_registers(tmp_path: Path) -> None:
    """Walking the Application's handlers: every command is a staff, group or reporter command of the
    matrix, every callback-data prefix has a row, every card verb is tried, every staff message handler
    is listed, and the only handler without a pattern is the refusal of unknown buttons."""
    app = build_application(_settings_for_inspection(tmp_path))
    commands: set[str] = set()
    prefixes: set[str] = set()
    staff_messages: set[str] = set()
    catch_all = []
    for handlers in app.handlers.values():
        for handler in handlers:
            if isinstance(handler, CommandHandler):
                commands |= set(handler.commands)
            elif isinstance(handler, CallbackQueryHandler):
                if handler.pattern is None:
                    catch_all.append(handler.callback)
                else:
                    assert isinstance(handler.pattern, re.Pattern)
                    prefixes |= _prefixes(handler.pattern)
            elif isinstance(handler, MessageHandler) and handler.callback.__module__.startswith(
                "handlers.coordinators"
            ):
                staff_messages.add(handler.callback.__name__)
    assert commands == set(STAFF_COMMANDS) | set(GROUP_COMMANDS) | REPORTER_COMMANDS
    assert prefixes == set(BUTTONS)
    assert staff_messages == set(STAFF_MESSAGES)
    assert catch_all == [unknown_button]
    assert _card_verbs() == {verb.partition(":")[0] for verb in VERBS}
    for name, allowed in {**STAFF_COMMANDS, **GROUP_COMMANDS, **BUTTONS, **STAFF_MESSAGES}.items():
        assert allowed <= {*ROLES, "reporter"}, name
        assert "none" not in allowed or name == "help", f"{name} works without a role"
        assert "revoked" not in allowed or name == "help", f"{name} works after a revocation"


def data_of(verb: str, case_id: str) -> str:
    """A card button's callback data: "w:<verb>:<case id>[:<argument>]"."""
    name, _, argument = verb.partition(":")
    return f"w:{name}:{case_id}" + (f":{argument}" if argument else "")


# Contact "yes": a relayed reply would reach the reporter at once, so a leak would show.
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


def _group_locales(h: Harness) -> dict[int, str]:
    work = h.app.bot_data[CASEWORK_KEY]
    assert isinstance(work, CaseworkContext)
    return dict(work.chat_locales)


async def _answer_in_private(h: Harness, user_id: int, message_id: int, data: str) -> JSON:
    """`user_id` presses a (forged) button `data` on the bot's message in their private chat; return the
    bot's next private message."""
    mark = max(m["message_id"] for m in await h.sb.messages(user_id, bot_id=h.bot_id))
    await h.sb.press_button(user_id, message_id, data=data, bot_id=h.bot_id, forge=True)
    reply: JSON = await h.sb.wait_for_message(user_id, bot_id=h.bot_id, after_message_id=mark, timeout=15)
    return reply


@pytest.mark.parametrize("role", ["none", "analyst", "revoked"])
async def test_every_button_and_command_is_refused_without_effect(harness: Harness, role: str) -> None:
    """Without a role (never granted, analyst only, or revoked), every card button answers "You are not
    allowed to do this." and every staff command of the matrix the role may not use replies so, in the
    group and privately; /language in the group and its buttons, export buttons and reporters' buttons
    pressed in the group are refused too: the case's status and assignee, its card, the roles, the duty
    list, the group's language and the audit trail stay as they were, nothing reaches the reporter and no
    case data reaches the member. What the matrix allows the role (an analyst's /export) then works."""
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
            _group_locales(h),
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
    # The group's language, export buttons and reporters' buttons, forged in the coordinators' group.
    card_id = (await the_card(h, case_id))["message_id"]
    for data, expected in (
        ("gl:vi", NOT_VALID),
        ("x:csv", NOT_VALID),
        ("x:csv:partner", NOT_VALID),
        ("s:danger:yes", INACTIVE),
        ("l:vi", INACTIVE),
    ):
        answer = await press(h, actor, case_id, data, forge=True, message_id=card_id)
        assert answer["text"] == expected, data
    assert (await say(h, actor, "/language"))["text"] == ELSEWHERE

    thread = await thread_of(h, case_id)
    commands = [
        staff_command(name, case_id, bystander, "ZZZZ-ZZZZ")
        for name, allowed in STAFF_COMMANDS.items()
        if role not in allowed
    ]
    commands.append(f"/grant {actor} coordinator")  # not even to themself
    for command in commands:
        if command.split()[0].removeprefix("/") not in PRIVATE_ONLY:
            reply = await say(h, actor, command)
            assert reply["text"] == NOT_ALLOWED, command
        reply = await say(h, actor, command, private=True)
        assert reply["text"] == NOT_ALLOWED, f"{command} (privately)"
    reply = await say(h, actor, "Zqreply to the card", thread_id=thread, reply_to=card_id)
    assert reply["text"] == NOT_ALLOWED, "a reply to the card"
    if role not in BUTTONS["x"]:
        # Export buttons in their private chat: refused before anything is read.
        for data in ("x:csv", "x:jsonl:partner", "x:geojson:public"):
            reply = await _answer_in_private(h, actor, private_start["message_id"], data)
            assert reply["text"] == NOT_ALLOWED, data
    await handled_so_far(h, actor)
    await handled_everything_sent(h.app)  # the private chat's updates too
    await settled(h, case_id)

    after = await snapshot()
    assert after[:6] == before[:6], f"a command by {role} changed something"
    assert after[7] == before[7], "the reporter was written to"
    assert set(after[6]) <= {*before[6], NOT_ALLOWED}, "the member got more than refusals privately"
    assert await staff.on_duty() == []
    leaked = "\n".join(after[6])
    assert case_id not in leaked
    assert "Zqsecret" not in leaked
    # /help in the coordinators' group lists the commands to any member; it names no case.
    assert case_id not in (await say(h, actor, "/help"))["text"]

    # What the matrix allows this role works.
    if role in STAFF_COMMANDS["export"]:
        sent = await h.sb.send_text(actor, "/export csv partner", bot_id=h.bot_id)
        document = await h.sb.wait_for_message(
            actor,
            bot_id=h.bot_id,
            after_message_id=sent["message"]["message_id"],
            predicate=lambda m: "document" in m,
            timeout=20,
        )
        assert document["caption"].splitlines()[0] == "1 row."


@pytest.mark.parametrize("role", ["coordinator", "admin"])
async def test_every_button_and_command_works_for_caseworkers(harness: Harness, role: str) -> None:
    """A coordinator and an admin can use every card button and every casework command (claim, unassign,
    each status, close with a reason, reopen, details privately, /queue, /mine, /case, /duty, /reply, a
    reply to the card, /find, /note, /notes, /priority, /tag, /link, /stats, /hotspots, /language in the
    group and its buttons); only an admin may /export, /grant and /revoke."""
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

    # Elsewhere, so not already linked as corroborating.
    _reporter2, other_case = await open_case(h, Plan(area="kh-poipet", place_text=None, contact="no"))
    works = {
        "find": lambda m: case_id in m["text"],
        "note": lambda m: m["text"] == "Note added.",
        "notes": lambda m: m["text"].endswith(": Zqnote seen at the gate"),
        "priority": lambda m: m["text"] == "Priority changed.",
        "tag": lambda m: m["text"] == "Tag added.",
        "link": lambda m: m["text"] == "Cases linked.",
        "stats": lambda m: m.get("caption", "").startswith("Last 30 days:"),
        "hotspots": lambda m: case_id in m["text"],
        "export": lambda m: "document" in m,
    }
    for name, check in works.items():
        command = staff_command(name, case_id, other, other_case)
        if name in PRIVATE_ONLY:
            sent = await h.sb.send_text(actor, command, bot_id=h.bot_id)
            reply = await h.sb.wait_for_message(
                actor,
                bot_id=h.bot_id,
                after_message_id=sent["message"]["message_id"],
                predicate=lambda m: "document" in m or m.get("text") == NOT_ALLOWED,
                timeout=20,
            )
        else:
            reply = await say(h, actor, command)
        if role in STAFF_COMMANDS[name]:
            assert check(reply), (command, reply.get("text"), reply.get("caption"))
        else:
            assert reply.get("text") == NOT_ALLOWED, command
    assert (await store(h).get_case(case_id)).priority is Priority.P1  # type: ignore[union-attr]

    choose = await say(h, actor, "/language")
    assert "gl:en" in [data for _label, data in buttons(choose)]
    mark = await last_message_id(h, h.group_id)
    answer = await press(h, actor, case_id, "gl:en", message_id=choose["message_id"])
    assert answer["answered"]
    assert not answer["text"]
    confirmed = await h.sb.wait_for_message(h.group_id, after_message_id=mark, timeout=15)
    assert confirmed["text"] == "This group's tickets are now in English."
    assert _group_locales(h)[h.group_id] == "en"

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
    """In a group that is not the coordinators' (the bot is a member), card buttons and every other kind
    of button pressed even by an admin are refused and change nothing, and every staff and group command
    of the matrix gets no answer but "This command is not available here.", there or privately."""
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
        commands = [staff_command(name, case_id, coordinator, case_id) for name in STAFF_COMMANDS]
        for command in [*commands, *(f"/{name}" for name in GROUP_COMMANDS)]:
            await h.sb.send_text(actor, command, chat_id=lounge_id)
        for data in ("gl:vi", "x:csv", "x:csv:full", "s:danger:yes", "l:vi"):
            answer = await press(
                h, actor, case_id, data, forge=True, chat_id=lounge_id, message_id=bait["message_id"]
            )
            assert answer["text"] in (INACTIVE, NOT_VALID), data
        await h.sb.send_text(
            actor, "Zqreply to the bot", chat_id=lounge_id, reply_to_message_id=bait["message_id"]
        )
        await handled_so_far(h, actor, chat_id=lounge_id)
    await settled(h, case_id)

    assert await snapshot() == before
    said = [str(m.get("text", "")) for m in await h.sb.messages(lounge_id) if m["from"]["is_bot"]]
    assert set(said) == {"This command is not available here."}, said
    assert lounge_id not in _group_locales(h)
    assert await StaffStore(get_database(h.app)).on_duty() == []
