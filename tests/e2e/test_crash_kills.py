"""`beacon run` SIGKILLed again and again (100 times by default) while reporters are mid-report and alerts
and card buttons are in flight: at seeded random moments, and at chosen ones (a submission, between the
commit and the receipt, an alert request hanging, an alert carried out but never answered, a coordinator's
claim). After every kill, before the restart: no committed report lost, none committed twice, no receipt
or "already received" without a committed case of that very report, one topic and one card per case
unless a send's outcome was unknowable (then flagged), and every acknowledged claim recorded. At the end:
every report finished (the conversations resumed), every case alerted, nothing about reporters in the
logs or the group.

BEACON_CRASH_KILLS sets the number of kills (CI uses the default), BEACON_CRASH_SEED the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.keys import generate_secret_key
from sandbox.botapi import METHODS
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.e2e.conftest import coordinators_world
from tests.e2e.crash_support import (
    UNASSIGN,
    BotProcess,
    Claim,
    Crowd,
    Inspector,
    InvariantBroken,
    button_texts,
    settle,
)

pytestmark = pytest.mark.slow
JSON = dict[str, Any]
KILLS = int(os.environ.get("BEACON_CRASH_KILLS", "100"))
SEED = int(os.environ.get("BEACON_CRASH_SEED", "20261128"))
LANES = 5  # reporters mid-report at once
RUN_SECONDS = 420.0  # the walks' own deadline: a hang fails the test instead of blocking it
TRIGGER_SECONDS = 2.0  # how long a chosen point is waited for before the kill happens anyway
MODES = ("random", "random", "random", "submit", "receipt", "alert_hang", "alert_done", "claim")


class KillSwitch:
    """Kills the bot from inside the sandbox, after the sandbox carried out a request to the coordinators'
    group and before it answers: the bot cannot know that its topic or card now exists."""

    def __init__(self, bot: BotProcess, group_id: int) -> None:
        self.bot = bot
        self.group_id = group_id
        self.armed: str | None = None  # the Bot API method to kill after
        self.fired = 0

    def wrap(self, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
        async def carried_out_then_killed(world: Any, account: Any, params: Any) -> Any:
            result = await original(world, account, params)
            if self.armed == method and str(params.get("chat_id")) == str(self.group_id):
                self.armed = None
                self.fired += 1
                self.bot.kill_now()
            return result

        return carried_out_then_killed


@pytest.fixture
async def world(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[JSON]:
    """The sandbox with a coordinators' forum group, and a `beacon run` process (not started yet)."""
    async with SandboxClient(sandbox.url) as sb:
        await sb.set_limits(enabled=False)
        world = await coordinators_world(sb, username="beacon_crash_bot")
        secret = generate_secret_key()
        database = tmp_path / "data" / "beacon.db"
        env = {
            "BEACON_BOT_TOKEN": world.token,
            "BEACON_API_URL": sandbox.url,
            "BEACON_DATABASE": str(database),
            "BEACON_SECRET_KEY": secret,
            "BEACON_COORDINATOR_CHAT_ID": str(world.group_id),
            "BEACON_ADMINS": str(world.coordinator_id),
            "BEACON_LOG_LEVEL": "INFO",
            # Every walk is a new account; the hourly limit would only quarantine the seeded crowd.
            "BEACON_REPORTS_PER_HOUR": "1000",
        }
        logs = tmp_path / "logs"
        logs.mkdir()
        process = BotProcess(sb, env, logs)
        switch = KillSwitch(process, world.group_id)
        for method in ("createForumTopic", "sendMessage"):
            monkeypatch.setitem(METHODS, method.lower(), switch.wrap(method, METHODS[method.lower()]))
        inspector = Inspector(sb, database, secret, world.group_id, world.coordinator_id)
        try:
            yield {
                "sb": sb,
                "bot": process,
                "bot_id": world.bot_id,
                "group_id": world.group_id,
                "coordinator_id": world.coordinator_id,
                "switch": switch,
                "inspector": inspector,
            }
        finally:
            await process.stop()


async def _fault_taken(sb: SandboxClient, fault_id: str) -> bool:
    return all(f["id"] != fault_id for f in await sb.faults())


async def test_sigkill_at_random_and_chosen_points_loses_and_duplicates_nothing(world: JSON) -> None:
    """100 SIGKILLs while five reporters walk reports, alerts go out and a coordinator claims cases: no
    report lost or doubled, no receipt without a case, one flagged-or-single ticket per case, claims kept,
    and every interrupted report resumed and finished after the restarts."""
    sb: SandboxClient = world["sb"]
    bot: BotProcess = world["bot"]
    switch: KillSwitch = world["switch"]
    inspector: Inspector = world["inspector"]
    group_id: int = world["group_id"]
    coordinator_id: int = world["coordinator_id"]
    rng = random.Random(SEED)
    crowd = Crowd(sb, bot, world["bot_id"], SEED)
    claims: list[Claim] = []
    modes: Counter[str] = Counter()
    began = time.monotonic()

    async def all_delivered() -> bool:
        rows = inspector.rows("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL")
        return int(rows[0][0]) == 0

    async def wait_for(check: Callable[[], Any]) -> None:
        with contextlib.suppress(TimeoutError):
            await sb.wait_until(check, timeout=TRIGGER_SECONDS)

    async def kill_at(mode: str) -> str:
        """Let the bot work until the point `mode` names (or a while), then SIGKILL it."""
        if mode in ("alert_hang", "alert_done") and not inspector.rows("SELECT 1 FROM outbox LIMIT 1"):
            mode = "random"
        if mode == "random":
            await asyncio.sleep(rng.uniform(0.15, 1.2))
        elif mode == "submit":
            crowd.submit_pressed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(crowd.submit_pressed.wait(), TRIGGER_SECONDS)
            await asyncio.sleep(rng.uniform(0.0, 0.12))
        elif mode == "receipt":
            # The wipe of the answers comes right after the commit and before the receipt: hold it.
            fault = await sb.inject_fault("deleteMessages", "hang", count=1, seconds=8)
            await wait_for(lambda: _fault_taken(sb, fault))
        elif mode == "alert_hang":
            method = rng.choice(("createForumTopic", "sendMessage"))
            fault = await sb.inject_fault(method, "hang", count=1, seconds=8, chat_id=group_id)
            await wait_for(lambda: _fault_taken(sb, fault))
        elif mode == "alert_done":
            switch.armed = rng.choice(("createForumTopic", "sendMessage"))

            async def fired() -> bool:
                return not bot.up.is_set()

            await wait_for(fired)
            switch.armed = None
        elif mode == "claim":
            rows = inspector.rows(
                "SELECT t.case_id, t.card_message_id FROM case_tickets t JOIN cases c ON c.id = t.case_id "
                "WHERE t.card_message_id IS NOT NULL AND c.assignee_id IS NULL ORDER BY t.case_id"
            )
            if rows:
                case_id, card = rng.choice(rows)
                pressed = await sb.press_button(
                    coordinator_id, int(card), chat_id=group_id, data=f"w:claim:{case_id}"
                )
                claims.append(Claim(str(case_id), str(pressed["callback_query_id"])))
            await asyncio.sleep(rng.uniform(0.0, 0.15))
        await bot.kill()
        return mode

    async def after_kill() -> None:
        await sb.clear_faults()
        for claim in claims:
            if claim.answer is None:
                answer = await sb.callback_answer(claim.callback_query_id)
                claim.answer = answer.get("text") if answer.get("answered") else None
        await inspector.check(crowd.walks, claims)

    await bot.start()
    lanes = [asyncio.create_task(crowd.run(lane, began + RUN_SECONDS)) for lane in range(LANES)]
    try:
        while bot.kills < KILLS:
            modes[await kill_at(rng.choice(MODES))] += 1
            await after_kill()
            await bot.start()
        killed_by = time.monotonic()
        crowd.stopping = True  # each reporter finishes the report in hand, with the bot left running
        await asyncio.wait_for(asyncio.gather(*lanes), 120)

        # The last alerts and card refreshes; a graceful restart renews the group's per-minute budget.
        for _ in range(8):
            if await settle(all_delivered, 8):
                break
            await bot.stop()
            await bot.start()
        await bot.stop()
        await after_kill()
        await inspector.check(crowd.walks, claims, final=True)
    finally:
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)

    walks = crowd.walks
    assert all(w.finished for w in walks)
    resumed = [w for w in walks if len(w.generations) > 1]
    # Only a /start whose draft was never written (the kill came before its write) makes a reporter begin
    # again; anywhere later the bot shows the question it holds and the report goes on.
    restarted_late = {w.marker: w.restarts for w in walks if set(w.restarts) - {"start", "danger"}}
    assert not restarted_late, f"reports that could not resume: {restarted_late}; {crowd.errors}"
    assert len(resumed) >= KILLS // 4, "most kills interrupt a report in progress"

    # Acknowledged claims reached their cards.
    for claim in claims:
        if claim.answer == "Done.":
            (card,) = inspector.rows(
                "SELECT card_message_id FROM case_tickets WHERE case_id = ?", (claim.case_id,)
            )
            shown = [m for m in await sb.messages(group_id) if m["message_id"] == card[0]]
            assert shown, claim.case_id
            assert UNASSIGN in button_texts(shown[0]), claim.case_id

    # Nothing about a reporter's account in the logs or the coordinators' group.
    logs = bot.log_text()
    group_text = "\n".join(str(m.get("text", "")) for m in await sb.messages(group_id))
    for w in walks:
        for secret in (str(w.user_id), w.first_name):
            if secret in logs or secret in group_text:
                raise InvariantBroken(f"a reporter's account ({secret}) appears in the logs or the group")

    print(
        f"\ncrash suite: {bot.kills} SIGKILLs {dict(sorted(modes.items()))}, "
        f"{switch.fired} after a carried-out alert request; {len(walks)} reports "
        f"({sum(w.receipt is not None for w in walks)} receipts, {sum(w.already for w in walks)} "
        f"'already received'), {len(resumed)} resumed across restarts, "
        f"{sum(len(w.restarts) for w in walks)} begun again at the first question; "
        f"{len(inspector.ledger.case_markers)} cases, {inspector.ledger.flagged_duplicates} flagged "
        f"duplicates; {len(claims)} claims; {inspector.ledger.checks} checks; "
        f"{time.monotonic() - began:.0f} s ({killed_by - began:.0f} s of kills, "
        f"{bot.starting:.0f} s of them starting the bot)"
    )
