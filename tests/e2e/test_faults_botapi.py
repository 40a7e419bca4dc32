"""Bot API faults on the reporter's side, through the sandbox: 429 storms, 5xx, hangs until the client
times out, dropped connections, getUpdates failing, and the whole Bot API down for a while.

Whatever fails, a report is committed exactly once, the reporter's conversation stays where it was and can
go on, the receipt arrives or the report shows in /status, and nothing is lost or handled twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from telegram.ext import CallbackContext

from bot.app import get_database
from handlers.coordinators.delivery import ALERTS_KEY, AlertRunner, deliver_alerts
from handlers.intake.conversation import RETRY_PAUSES
from handlers.intake.draft import Step
from tests.e2e import test_alert_delivery as delivery
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    CODE,
    QUICK,
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    new_reporter,
    outbox_rows,
    step_of,
    today_utc,
)
from tests.e2e.reporter import Reporter

JSON = dict[str, Any]
HELP_FIRST_LINE = "/start: begin a report"
SORRY = "Something went wrong on our side. Please try again."
# A "hang" longer than python-telegram-bot's 5 s read timeout: the bot gives up, not the sandbox.
HANG_SECONDS = 8


def runner(h: Harness) -> AlertRunner:
    found = h.app.bot_data[ALERTS_KEY]
    assert isinstance(found, AlertRunner)
    return found


async def bot_texts(r: Reporter) -> list[str]:
    return [str(m.get("text", "")) for m in await r.bot_messages()]


async def receipts(r: Reporter) -> list[JSON]:
    return [m for m in await r.bot_messages() if CODE.search(m.get("text", ""))]


async def status_lines(r: Reporter) -> str:
    """Send /status and return the bot's answer."""
    sent = await r.sb.send_text(r.user_id, "/status", bot_id=r.bot_id)
    answer = await r.reply_after(sent["message"]["message_id"], timeout=30)
    return str(answer["text"])


async def fault(h: Harness, r: Reporter, method: str, kind: str, count: int = 1, **options: Any) -> None:
    """A fault on the bot's calls of `method` for this reporter's chat only."""
    await h.sb.inject_fault(method, kind, count=count, chat_id=r.user_id, **options)


# --- one fault at each step ------------------------------------------------------------------------


async def test_a_fault_at_each_step_leaves_the_conversation_able_to_go_on(harness: Harness) -> None:
    """A 500, a dropped connection, a hang past the client's timeout and a 429 storm, each on the call that
    shows the next question, takes the buttons off the answered one, or acknowledges a button: every
    question still arrives, the step held is the one shown, and the report is committed once, as given."""
    h = harness
    r = await new_reporter(h)
    plan = Plan(victim=False, conditions=("locked_in",), details=("They work sixteen hours a day.",))
    walk = Walk(r, plan)
    await walk.begin()

    await fault(h, r, "sendMessage", "server_error")
    await walk.answer(Step.DANGER)  # the WHO question is sent twice: the first try answers 500
    await fault(h, r, "editMessageReplyMarkup", "reset")
    await walk.answer(Step.WHO)
    await fault(h, r, "sendMessage", "hang", seconds=HANG_SECONDS)
    await walk.answer(Step.VICTIM_ASK)
    await h.sb.inject_fault("answerCallbackQuery", "server_error", count=2)
    await walk.answer(Step.WHERE)
    await fault(h, r, "sendMessage", "retry_after", count=6, retry_after=1)
    await walk.answer(Step.AREA)
    assert await step_of(h, r) == Step.PLACE_DETAILS.value
    await walk.until(Step.REVIEW, start=Step.PLACE_DETAILS)

    # The receipt itself meets a 502 and a dropped connection.
    await fault(h, r, "sendMessage", "bad_gateway")
    await fault(h, r, "sendMessage", "reset")
    receipt = await walk.submit()
    case = await case_by_receipt(h, receipt["text"])
    assert await case_ids(h) == [case.case_id]
    assert case.report == plan.report("en", today_utc())
    assert await outbox_rows(h) == [(case.case_id, "new_case")]
    assert await step_of(h, r) == Step.RECEIPT.value
    assert SORRY not in await bot_texts(r), "every fault was ridden out without troubling the reporter"
    assert await h.sb.faults() == []


async def test_a_receipt_that_cannot_be_delivered_leaves_one_case_that_status_shows(harness: Harness) -> None:
    """The Bot API refuses the receipt every time the bot tries it right after the commit:
    the case exists once, the reporter is not told to "try again" (that would file it twice), pressing
    "Send" again cannot make a second one, and /status shows the report."""
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, QUICK)
    await walk.begin()
    await walk.to_review()
    review = await r.question(Step.REVIEW.value)

    tries = len(RETRY_PAUSES) + 1  # every try the bot makes
    await fault(h, r, "sendMessage", "server_error", count=tries)
    await fault(h, r, "deleteMessages", "server_error", count=tries)
    await r.press(Step.REVIEW.value, "submit", expect_next=False)

    async def committed() -> bool:
        return len(await case_ids(h)) == 1

    await h.sb.wait_until(committed, timeout=30)

    async def given_up() -> bool:
        failed = [c for c in await h.sb.calls("sendMessage") if str(c["chat_id"]) == str(r.user_id)]
        return len([c for c in failed if not c["ok"]]) >= tries

    await h.sb.wait_until(given_up, timeout=30)
    await h.sb.clear_faults()
    assert await receipts(r) == []

    # The old "Send" button, pressed again, does not submit twice.
    pressed = await h.sb.press_button(
        r.user_id, review["message_id"], data="s:review:submit", bot_id=h.bot_id
    )
    assert (await r.answer_of(pressed, timeout=30))["text"] == "This button is no longer active."
    (case_id,) = await case_ids(h)
    assert case_id in await status_lines(r)
    assert len(await case_ids(h)) == 1
    assert await outbox_rows(h) == [(case_id, "new_case")]
    assert SORRY not in await bot_texts(r)


# --- polling -----------------------------------------------------------------------------------------


async def test_polling_rides_out_failing_get_updates_without_losing_or_repeating_an_update(
    harness: Harness,
) -> None:
    """getUpdates answers 500, 502, 429 and drops the connection, six times in a row, while a reporter
    sends /help three times: polling goes on, and each /help is answered exactly once."""
    h = harness
    r = await new_reporter(h)
    await h.sb.inject_fault("getUpdates", "server_error", count=2)
    await h.sb.inject_fault("getUpdates", "reset", count=2)
    await h.sb.inject_fault("getUpdates", "bad_gateway")
    await h.sb.inject_fault("getUpdates", "retry_after", retry_after=1)
    for _ in range(3):
        await r.sb.send_text(r.user_id, "/help", bot_id=r.bot_id)

    async def answered() -> bool:
        return len([t for t in await bot_texts(r) if t.startswith(HELP_FIRST_LINE)]) >= 3

    await h.sb.wait_until(answered, timeout=60)
    assert await h.sb.faults() == [], "every fault was met"
    # One more round trip: anything fetched twice would have been answered by now.
    await r.send("/help", expect=lambda m: m.get("text", "").startswith(HELP_FIRST_LINE))
    assert len([t for t in await bot_texts(r) if t.startswith(HELP_FIRST_LINE)]) == 4
    assert h.app.running
    assert h.app.updater is not None
    assert h.app.updater.running


# --- the Bot API down for a while --------------------------------------------------------------------

# Why 45 s: it takes python-telegram-bot's polling backoff (1, 1.5, 2.25 ... s, capped at 30) through seven
# steps and the dispatcher's retry backoff (up to 2, 4, 8, 16, 32 s) through four, which is what shows that
# both back off instead of spinning; a longer outage only repeats the capped steps at the cost of CI time.
OUTAGE_SECONDS = 45.0
# Generous ceilings on the calls made while everything fails: spinning would make thousands.
MAX_POLLS_IN_OUTAGE = 14
MAX_ALERT_TRIES_IN_OUTAGE = 8
MAX_CALLS_IN_OUTAGE = 40


async def test_the_bot_api_down_for_45_seconds_is_ridden_out_with_backoff(harness: Harness) -> None:
    """Every Bot API call fails (502) for 45 s while a reporter presses "Send", another sends /start and an
    alert is owed: the bot keeps running, polls and retries with backoff rather than spinning, and once the
    API is back both reporters are answered, each alert is delivered once and no report is lost or doubled."""
    h = harness
    runner(h).dispatcher.rng = random.Random(45)  # seeded retry jitter
    waiting = await new_reporter(h)
    walk = Walk(waiting, QUICK)
    await walk.begin()
    await walk.to_review()
    newcomer = await new_reporter(h)

    before = await h.sb.calls()
    mark = before[-1]["seq"] if before else 0
    async with runner(h).lock:  # committed just before the outage, its alert is still owed when it starts
        owed = (await case_by_receipt(h, (await Walk(await new_reporter(h), QUICK).report())["text"])).case_id
        await h.sb.inject_fault("*", "bad_gateway", duration=OUTAGE_SECONDS, bot_id=h.bot_id)
        started = time.monotonic()

    async def polling_fails() -> bool:
        return any(not c["ok"] for c in await h.sb.calls("getUpdates", after=mark))

    # Pressed once the poll that was waiting has come back: these updates wait for the outage to end.
    await h.sb.wait_until(polling_fails, timeout=20)
    review = await waiting.question(Step.REVIEW.value)
    await h.sb.press_button(waiting.user_id, review["message_id"], data="s:review:submit", bot_id=h.bot_id)
    await h.sb.send_text(newcomer.user_id, "/start", bot_id=h.bot_id)
    await asyncio.sleep(max(0.0, started + OUTAGE_SECONDS - time.monotonic()))
    assert await h.sb.faults() == []

    during = [c for c in await h.sb.calls(after=mark) if c["time"] <= await h.sb.now() and not c["ok"]]
    polls = [c for c in during if c["method"] == "getUpdates"]
    alerts = [c for c in during if c["method"] in ("createForumTopic", "sendMessage")]
    assert 2 <= len(polls) <= MAX_POLLS_IN_OUTAGE, f"{len(polls)} failed polls in {OUTAGE_SECONDS} s"
    assert 1 <= len(alerts) <= MAX_ALERT_TRIES_IN_OUTAGE, f"{len(alerts)} alert tries in {OUTAGE_SECONDS} s"
    assert len(during) <= MAX_CALLS_IN_OUTAGE, f"{len(during)} failed calls in {OUTAGE_SECONDS} s"
    assert h.app.running
    assert h.app.updater is not None
    assert h.app.updater.running

    # Back: the pending reporters are answered (polling may be in a 17 s pause, the alert in a 32 s one).
    receipt = await waiting.reply_after(
        review["message_id"], lambda m: bool(CODE.search(m.get("text", ""))), timeout=60
    )
    await newcomer.question(Step.DANGER.value, timeout=60)
    submitted = (await case_by_receipt(h, receipt["text"])).case_id
    assert sorted(await case_ids(h)) == sorted([owed, submitted])

    async def drained() -> bool:
        rows = await get_database(h.app).execute_fetchall("SELECT sent_at FROM outbox")
        return len(rows) == 2 and all(row[0] is not None for row in rows)

    await h.sb.wait_until(drained, timeout=60)
    names = [t["name"] for c in (await h.sb.state())["chats"] if c["id"] == h.group_id for t in c["topics"]]
    assert sorted(case_id for case_id in (owed, submitted) for name in names if case_id in name) == sorted(
        [owed, submitted]
    ), "one topic per case"
    dangers = [m for m in await newcomer.bot_messages() if "s:danger:" in str(m.get("reply_markup"))]
    assert len(dangers) == 1, "the /start sent during the outage was handled once"
    assert len(await receipts(waiting)) == 1


# --- the coordinators' group changes during a burst --------------------------------------------------

BURST = 7  # over the dispatcher's BURST_THRESHOLD of 6: the lower-priority cases are folded into a digest
basic_group_harness = delivery.basic_group_harness


async def file_burst(h: Harness) -> list[str]:
    """Seven P3/P4 reports committed while delivery is busy elsewhere; their case ids."""
    await h.sb.set_limits(enabled=False)
    runner(h).dispatcher.per_minute = 10_000  # its pacing is tested in test_alert_delivery
    async with runner(h).lock:
        return [
            (await delivery.file_report(h, plan))[1] for plan in [delivery.LOW, delivery.LOWEST] * 3 + [QUICK]
        ]


async def outbox_state(h: Harness) -> list[tuple[str, bool, bool]]:
    rows = await get_database(h.app).execute_fetchall(
        "SELECT case_id, sent_at, dead_at FROM outbox ORDER BY id"
    )
    return [(str(r[0]), r[1] is not None, r[2] is not None) for r in rows]


async def test_a_bot_kicked_during_a_burst_dead_letters_each_alert_once_and_keeps_running(
    harness: Harness,
) -> None:
    """The bot is removed from the group while a burst waits: no digest and no ticket can be posted, each
    alert is dead-lettered after one refused try (never retried in a loop, never silently dropped), the
    admin is told, and reporters are still served."""
    h = harness
    started = await h.sb.send_text(h.coordinator_id, "/start", bot_id=h.bot_id)
    await h.sb.wait_for_message(
        h.coordinator_id, bot_id=h.bot_id, after_message_id=started["message"]["message_id"]
    )
    await h.sb.set_member(h.group_id, h.bot_id, "kicked")
    cases = await file_burst(h)

    async def all_dead() -> bool:
        state = await outbox_state(h)
        return len(state) == BURST and all(dead for _, _, dead in state)

    await h.sb.wait_until(all_dead, timeout=40)
    assert sorted(case_id for case_id, _, _ in await outbox_state(h)) == sorted(cases)
    assert not any(sent for _, sent, _ in await outbox_state(h))
    tries = [c for c in await h.sb.calls("createForumTopic") if str(c["chat_id"]) == str(h.group_id)]
    assert len(tries) == BURST, "one refused try per alert"
    assert all(c["error_code"] == 403 for c in tries)
    told = [
        m
        for m in await h.sb.messages(h.coordinator_id, bot_id=h.bot_id)
        if "could not deliver" in m.get("text", "")
    ]
    assert told, "the admin was told"
    assert {case_id for case_id in cases if any(case_id in m["text"] for m in told)} == set(cases)
    r = await new_reporter(h)
    await Walk(r, QUICK).begin()
    assert h.app.running


async def test_a_group_migrated_during_a_burst_gets_every_ticket_once_in_the_new_chat(
    basic_group_harness: Harness,
) -> None:
    """A basic group becomes a supergroup while a burst waits: every ticket is posted once, in the new
    chat, and nothing more goes to the old one."""
    h = basic_group_harness
    cases = await file_burst(h)
    new_chat = await h.sb.migrate_group(h.group_id)
    await deliver_alerts(CallbackContext(h.app))

    async def all_sent() -> bool:
        state = await outbox_state(h)
        return len(state) == BURST and all(sent for _, sent, _ in state)

    await h.sb.wait_until(all_sent, timeout=60)
    new_texts = [str(m.get("text", "")) for m in await h.sb.messages(new_chat) if m["from"]["is_bot"]]
    for case_id in cases:
        assert sum(1 for t in new_texts if delivery.is_card({"text": t}, case_id)) == 1, (
            f"one card for {case_id}"
        )
    old_texts = [
        m.get("text") for m in await h.sb.messages(h.group_id) if m["from"]["is_bot"] and "text" in m
    ]
    assert old_texts == [], "nothing was posted in the old group"
    digests = [t for t in new_texts if "lower-priority cases arrived at the same time" in t]
    assert len(digests) <= 1
