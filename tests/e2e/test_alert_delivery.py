"""Alerts reach the coordinators' group through the outbox: one topic and one minimal card per case, P1
first through a storm of 429s, dead letters with an operator alert, a migrated group and a deleted topic
followed, and, with `beacon run` killed between commit and send, delivered after restart exactly once."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application, get_database, start_application, stop_application
from bot.config import load_settings
from bot.domain.models import Priority
from bot.keys import generate_secret_key
from bot.services.alerts import MIGRATED_CHAT_KEY
from handlers.coordinators.delivery import ALERTS_KEY, AlertRunner
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from storage.coordination import CoordinationStore, Ticket
from tests.e2e.conftest import Harness, make_token
from tests.e2e.intake_flow import (
    QUICK,
    Plan,
    Walk,
    add_information,
    case_by_receipt,
    fast_track,
    new_reporter,
    store,
    withdraw,
)
from tests.e2e.reporter import Reporter
from tests.e2e.test_processes import URL_LINE, _bot_env, _read_until, _spawn, _stop

JSON = dict[str, Any]
ADDED = "The reporter added information. The card above is up to date."
WITHDRAWN_NOTICE = "The reporter withdrew this report. A captor may have forced this: treat the case as open."
WITHDRAWN_WARNING = "⚠️ Withdrawn by the reporter. A captor may have forced this: treat the case as open."
LOW = replace(QUICK, conditions=("wages_withheld",))  # triaged P3
LOWEST = QUICK  # triaged P4


# --- what the coordinators see -----------------------------------------------------------------------


def is_card(message: JSON, case_id: str) -> bool:
    return f"Case {case_id}" in str(message.get("text", "")).split("\n", 1)[0]


async def bot_texts(sb: SandboxClient, chat_id: int) -> list[JSON]:
    """Every message from a bot in the group (all topics), service messages left out."""
    return [m for m in await sb.messages(chat_id) if m["from"]["is_bot"] and "text" in m]


async def topics(sb: SandboxClient, chat_id: int) -> list[JSON]:
    state = await sb.state()
    (chat,) = [c for c in state["chats"] if c["id"] == chat_id]
    return list(chat["topics"])


async def topics_of(sb: SandboxClient, chat_id: int, case_id: str) -> list[JSON]:
    return [t for t in await topics(sb, chat_id) if case_id in t["name"]]


async def cards_of(sb: SandboxClient, chat_id: int, case_id: str) -> list[JSON]:
    return [m for m in await bot_texts(sb, chat_id) if is_card(m, case_id)]


async def thread_texts(sb: SandboxClient, chat_id: int, thread_id: int) -> list[str]:
    """The bot's text messages in one topic, oldest first."""
    messages = await sb.messages(chat_id, thread_id=thread_id)
    return [m["text"] for m in messages if m["from"]["is_bot"] and "text" in m]


async def calls_to(sb: SandboxClient, method: str, chat_id: int) -> list[JSON]:
    """The bot's calls of `method` on one chat, in order (the log keeps chat ids as sent: text)."""
    return [c for c in await sb.calls(method) if str(c["chat_id"]) == str(chat_id)]


# --- what Beacon recorded ----------------------------------------------------------------------------


def coordination(h: Harness) -> CoordinationStore:
    return CoordinationStore(get_database(h.app), store(h))


async def outbox(h: Harness, case_id: str) -> list[tuple[str, bool, bool, int]]:
    """(kind, sent, dead, attempts) of each outbox row of a case, oldest first."""
    rows = await get_database(h.app).execute_fetchall(
        "SELECT kind, sent_at, dead_at, attempts FROM outbox WHERE case_id = ? ORDER BY id", (case_id,)
    )
    return [(str(r[0]), r[1] is not None, r[2] is not None, int(r[3])) for r in rows]


async def delivered(h: Harness, case_id: str, count: int = 1) -> None:
    """Wait until `count` outbox rows of the case exist and all were sent."""

    async def done() -> bool:
        rows = await outbox(h, case_id)
        return len(rows) >= count and all(sent for _, sent, _, _ in rows)

    await h.sb.wait_until(done, timeout=20)


async def ticket(h: Harness, case_id: str) -> Ticket:
    found = await coordination(h).ticket(case_id)
    assert found is not None, f"no ticket for {case_id}"
    return found


async def file_report(h: Harness, plan: Plan, **user: Any) -> tuple[Reporter, str]:
    """A new reporter files a report; return them and the case id."""
    r = await new_reporter(h, **user)
    receipt = await Walk(r, plan).report()
    return r, (await case_by_receipt(h, receipt["text"])).case_id


def runner(h: Harness) -> AlertRunner:
    found = h.app.bot_data[ALERTS_KEY]
    assert isinstance(found, AlertRunner)
    return found


# --- one report, one ticket --------------------------------------------------------------------------


async def test_one_report_gives_one_topic_with_one_minimal_card(harness: Harness) -> None:
    """A report opens one topic named with priority and case id, holding one card that shows no free
    text, no place details, nothing about the victim's identity and nothing about the reporter."""
    h = harness
    plan = Plan(
        victim=True,
        victim_name="Zyxname Victimova",
        victim_passport="ZYX998877",
        victim_handle="@zyx_victim_handle",
        place_text="Zyxplace compound, building Q, floor 4",
        details=("Zyxdetails they beat him at night",),
    )
    r, case_id = await file_report(
        h, plan, first_name="Quorra", last_name="Reporterson", username="quorra_reports"
    )
    await delivered(h, case_id)
    case = await store(h).get_case(case_id)
    assert case is not None

    (topic,) = await topics(h.sb, h.group_id)
    assert case_id in topic["name"]
    assert f"P{case.priority.value}" in topic["name"]
    texts = await thread_texts(h.sb, h.group_id, topic["message_thread_id"])
    assert len(texts) == 1, "one card in the topic, nothing else"
    card = texts[0]
    assert is_card({"text": card}, case_id)
    assert f"P{case.priority.value}" in card
    assert (await ticket(h, case_id)).thread_id == topic["message_thread_id"]

    transcript = [m.get("text", "") for m in await h.sb.messages(h.group_id)] + [topic["name"]]
    transcript += [str(m.get("forum_topic_created", "")) for m in await h.sb.messages(h.group_id)]
    seen = "\n".join(transcript)
    for secret in ("Zyx", "zyx", "Victimova", "ZYX998877", "building Q", "beat him"):
        assert secret not in seen, f"{secret!r} reached the group"
    for identity in ("Quorra", "Reporterson", "quorra_reports", str(r.user_id)):
        assert identity not in seen, f"the reporter's {identity!r} reached the group"


# --- a storm of 429s ---------------------------------------------------------------------------------


async def test_a_storm_of_429s_delivers_every_ticket_once_with_p1_first(harness: Harness) -> None:
    """P3/P4 reports committed while the group answers 429, then a P1: each is delivered exactly once,
    the P1 first, and no 429 counts as a failed attempt."""
    h = harness
    # The dispatcher's own pacing counts every attempt, the 429s too; it is tested in the unit tests.
    runner(h).dispatcher.per_minute = 600
    await h.sb.inject_fault("createForumTopic", "retry_after", count=1000, chat_id=h.group_id, retry_after=1)
    low = [(await file_report(h, plan))[1] for plan in (LOW, LOWEST, LOW)]
    storm = [c for c in await calls_to(h.sb, "createForumTopic", h.group_id) if c["error_code"] == 429]
    assert storm, "the low-priority alerts met the storm"

    # The P1 is committed while the storm lasts; holding the delivery lock meanwhile keeps a P3 whose
    # retry_after has lapsed from slipping into the gap before the P1 exists.
    async with runner(h).lock:
        receipt = await fast_track(await new_reporter(h), "Two men are being beaten right now")
        urgent = (await case_by_receipt(h, receipt["text"])).case_id
        await h.sb.clear_faults()
        await h.sb.inject_fault("createForumTopic", "retry_after", chat_id=h.group_id, retry_after=1)
        await h.sb.inject_fault("sendMessage", "retry_after", chat_id=h.group_id, retry_after=1)
    for case_id in [urgent, *low]:
        await delivered(h, case_id)

    cases = [urgent, *low]
    for case_id in cases:
        assert len(await topics_of(h.sb, h.group_id, case_id)) == 1, f"one topic for {case_id}"
        assert len(await cards_of(h.sb, h.group_id, case_id)) == 1, f"one card for {case_id}"
        assert [attempts for *_, attempts in await outbox(h, case_id)] == [0], "429s are not attempts"
    priorities = {c: (await store(h).get_case(c)).priority for c in cases}  # type: ignore[union-attr]
    assert priorities[urgent] is Priority.P1
    assert [priorities[c] for c in low] == [Priority.P3, Priority.P4, Priority.P3]
    order = [next(c for c in cases if is_card(m, c)) for m in await bot_texts(h.sb, h.group_id)]
    assert order == [urgent, low[0], low[2], low[1]], "P1 first, then P3 by age, then P4"
    topic_order = [next(c for c in cases if c in t["name"]) for t in await topics(h.sb, h.group_id)]
    assert topic_order == order
    late = await calls_to(h.sb, "sendMessage", h.group_id)
    assert any(c["error_code"] == 429 for c in late), "the cards met 429s too"


async def test_a_p1_waiting_out_a_429_is_not_overtaken_by_a_p3(harness: Harness) -> None:
    """When the P1's topic gets a 429, the group waits; the P3 committed with it still comes after it."""
    h = harness
    async with runner(h).lock:
        _, later = await file_report(h, LOW)
        receipt = await fast_track(await new_reporter(h), "They are dragging a woman into a van")
        urgent = (await case_by_receipt(h, receipt["text"])).case_id
        await h.sb.inject_fault("createForumTopic", "retry_after", chat_id=h.group_id, retry_after=5)
    await delivered(h, urgent)
    await delivered(h, later)

    order = [m for m in await bot_texts(h.sb, h.group_id) if is_card(m, urgent) or is_card(m, later)]
    assert is_card(order[0], urgent), "the P1's card comes first"


# --- permanent failures ------------------------------------------------------------------------------


async def test_a_bot_kicked_from_the_group_dead_letters_and_alerts_the_admin(harness: Harness) -> None:
    """403 on the group: the alert is dead-lettered (not retried) and the admin who started the bot is told
    privately; later alerts are still delivered."""
    h = harness
    started = await h.sb.send_text(h.coordinator_id, "/start", bot_id=h.bot_id)
    await h.sb.wait_for_message(
        h.coordinator_id, bot_id=h.bot_id, after_message_id=started["message"]["message_id"]
    )
    await h.sb.inject_fault("createForumTopic", "kicked", chat_id=h.group_id)

    _, lost = await file_report(h, LOWEST)

    async def dead() -> bool:
        return [dead for _, _, dead, _ in await outbox(h, lost)] == [True]

    await h.sb.wait_until(dead, timeout=20)
    alert = await h.sb.wait_for_message(
        h.coordinator_id, bot_id=h.bot_id, predicate=lambda m: lost in m.get("text", ""), timeout=20
    )
    assert "could not deliver" in alert["text"]
    letters = await coordination(h).dead_letters()
    assert [(case, "kicked" in error) for _, case, error in letters] == [(lost, True)]

    # A later alert (same priority, so behind the dead one if that were still queued) goes through.
    _, later = await file_report(h, LOWEST)
    await delivered(h, later)
    assert await outbox(h, lost) == [("new_case", False, True, 1)]
    assert await topics_of(h.sb, h.group_id, lost) == []
    assert len(await calls_to(h.sb, "createForumTopic", h.group_id)) == 2
    operator_alerts = [
        m
        for m in await h.sb.messages(h.coordinator_id, bot_id=h.bot_id)
        if "could not deliver" in m.get("text", "")
    ]
    assert len(operator_alerts) == 1


# --- the group moves, the topic goes -----------------------------------------------------------------


@pytest.fixture
async def basic_group_harness(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Harness]:
    """Like `harness`, but the coordinators' group is a basic group (no forum), which can migrate."""
    token = make_token()
    async with SandboxClient(sandbox.url) as sb:
        bot = await sb.create_bot(token, username="beacon_test_bot", first_name="Beacon")
        coordinator = await sb.create_user("Coordinator", language_code="en")
        group = await sb.create_group(
            "Coordinators",
            forum=False,
            supergroup=False,
            admins=[coordinator["id"]],
            bots=[{"bot_id": bot["id"], "admin": True}],
        )
        settings = load_settings(
            _env_file=None,
            bot_token=token,
            api_url=sandbox.url,
            database=tmp_path / "beacon.db",
            secret_key=generate_secret_key(),
            coordinator_chat_id=group["id"],
            admins=[coordinator["id"]],
        )
        app = build_application(settings)
        await start_application(app)
        try:
            yield Harness(sandbox, sb, app, settings, bot["id"], group["id"], coordinator["id"])
        finally:
            await stop_application(app)


async def test_a_group_migrated_to_a_supergroup_is_followed(basic_group_harness: Harness) -> None:
    """A basic group gets its card in the chat; after it becomes a supergroup the case's ticket and every
    later alert land in the new chat, whose id Beacon remembers."""
    h = basic_group_harness
    r, case_id = await file_report(h, LOW)
    await delivered(h, case_id)
    assert len(await cards_of(h.sb, h.group_id, case_id)) == 1
    assert (await ticket(h, case_id)).thread_id is None

    new_chat = await h.sb.migrate_group(h.group_id)
    await add_information(r, "They were moved to the building by the river.")
    await delivered(h, case_id, count=2)
    _, after = await file_report(h, LOWEST)
    await delivered(h, after)

    key = f"{MIGRATED_CHAT_KEY}:{h.settings.coordinator_chat_id}"
    assert await coordination(h).get_value(key) == str(new_chat)
    moved = await ticket(h, case_id)
    assert moved.chat_id == new_chat
    texts = [m["text"] for m in await bot_texts(h.sb, new_chat)]
    assert len([t for t in texts if is_card({"text": t}, case_id)]) == 1
    assert ADDED in texts
    assert len(await cards_of(h.sb, new_chat, after)) == 1
    assert [m["text"] for m in await bot_texts(h.sb, h.group_id)] == [
        m["text"] for m in await cards_of(h.sb, h.group_id, case_id)
    ], "nothing more was posted in the old group"


async def test_a_deleted_topic_is_recreated_when_the_case_changes(harness: Harness) -> None:
    """After coordinators delete a case's topic, the reporter's /add opens a new topic with a fresh card
    and the notice."""
    h = harness
    r, case_id = await file_report(h, LOW)
    await delivered(h, case_id)
    (old,) = await topics_of(h.sb, h.group_id, case_id)
    await h.sb.delete_topic(h.group_id, old["message_thread_id"])
    assert await topics_of(h.sb, h.group_id, case_id) == []

    await add_information(r, "They were moved to the building by the river.")
    await delivered(h, case_id, count=2)

    (new,) = await topics_of(h.sb, h.group_id, case_id)
    assert new["message_thread_id"] != old["message_thread_id"]
    texts = await thread_texts(h.sb, h.group_id, new["message_thread_id"])
    assert len(texts) == 2
    assert is_card({"text": texts[0]}, case_id)
    assert texts[1] == ADDED
    assert (await ticket(h, case_id)).thread_id == new["message_thread_id"]
    assert "moved to the building" not in "\n".join(texts)


async def test_a_withdrawal_posts_the_notice_and_flags_the_card(harness: Harness) -> None:
    """/delete posts the withdrawal notice in the case's topic and edits the card to warn of it."""
    h = harness
    r, case_id = await file_report(h, LOW)
    await delivered(h, case_id)
    (card,) = await cards_of(h.sb, h.group_id, case_id)
    assert WITHDRAWN_WARNING not in card["text"]

    await withdraw(r)
    await delivered(h, case_id, count=2)

    (topic,) = await topics_of(h.sb, h.group_id, case_id)
    texts = await thread_texts(h.sb, h.group_id, topic["message_thread_id"])
    assert texts[1:] == [WITHDRAWN_NOTICE]
    (edited,) = await cards_of(h.sb, h.group_id, case_id)
    assert edited["message_id"] == card["message_id"], "the card is edited in place"
    assert WITHDRAWN_WARNING in edited["text"]


# --- a crash between commit and send -----------------------------------------------------------------


def _outbox_on_disk(database: Path) -> list[tuple[str, bool]]:
    """(case id, sent) of each outbox row, read from the file as another process sees it."""
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute("SELECT case_id, sent_at FROM outbox ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [(str(case_id), sent is not None) for case_id, sent in rows]


@pytest.fixture
async def sandbox_subprocess() -> AsyncIterator[tuple[str, str]]:
    """`beacon sandbox` in its own process: (url, bot token)."""
    token = make_token()
    process = await _spawn("sandbox", "--port", "0", "--token", token)
    try:
        yield await _read_until(process, URL_LINE), token
    finally:
        assert await _stop(process) == 0


@pytest.mark.slow
async def test_beacon_run_killed_between_commit_and_send_delivers_once_after_restart(
    sandbox_subprocess: tuple[str, str], tmp_path: Path
) -> None:
    """`beacon run` SIGKILLed while the topic is being opened: after a restart the ticket arrives once."""
    url, token = sandbox_subprocess
    bot_id = int(token.split(":")[0])
    async with SandboxClient(url) as sb:
        await sb.set_limits(enabled=False)
        coordinator = await sb.create_user("Coordinator", language_code="en")
        group = await sb.create_group(
            "Coordinators",
            forum=True,
            admins=[coordinator["id"]],
            bots=[{"bot_id": bot_id, "admin": True, "can_manage_topics": True}],
        )
        env = {
            **_bot_env(url, token, tmp_path),
            "BEACON_COORDINATOR_CHAT_ID": str(group["id"]),
            "BEACON_ADMINS": str(coordinator["id"]),
        }
        database = Path(env["BEACON_DATABASE"])
        # More than one hang: the alert bot times out after 5 s and would retry.
        await sb.inject_fault("createForumTopic", "hang", count=5, seconds=30, chat_id=group["id"])

        bot = await _spawn("run", env=env, cwd=tmp_path)
        try:
            user = await sb.create_user("Reporter", language_code="en")
            await Walk(Reporter(sb, bot_id, user["id"]), QUICK).report()

            async def stuck_sending() -> bool:
                return bool(_outbox_on_disk(database)) and bool(await sb.calls("createForumTopic"))

            await sb.wait_until(stuck_sending, timeout=20)
        finally:
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
        ((case_id, sent),) = _outbox_on_disk(database)
        assert not sent
        hung = await calls_to(sb, "createForumTopic", group["id"])
        assert hung
        assert not any(c["ok"] for c in hung), "the bot died while opening the topic"
        assert await topics(sb, group["id"]) == []

        await sb.clear_faults()
        bot = await _spawn("run", env=env, cwd=tmp_path)
        try:

            async def sent_on_disk() -> bool:
                return _outbox_on_disk(database) == [(case_id, True)]

            await sb.wait_until(sent_on_disk, timeout=30)
        finally:
            assert await _stop(bot) == 0
        (topic,) = await topics(sb, group["id"])
        assert case_id in topic["name"]
        texts = await thread_texts(sb, group["id"], topic["message_thread_id"])
        assert len(texts) == 1
        assert is_card({"text": texts[0]}, case_id)
        assert len(await bot_texts(sb, group["id"])) == 1, "one card in the whole group"
