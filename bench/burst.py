"""Benchmark: a burst of 10,000 reports within one minute, and how their alerts drain into the
coordinators' group within Telegram's limits.

One process runs the sandbox (Telegram's flood limits on: 20 messages a minute into a group), the real
Beacon Application (long polling over HTTP on loopback, its job queue, its alert dispatcher) and the
simulated people. What enters how:

- ``--telegram`` reporters (default 30) walk the shortest real flow, the danger fast track (/start, "danger
  now", a shared location, one line: four updates, five answers), through the sandbox, spread over the
  arrival minute: the whole real path, under the burst's load.
- The other reports (9,970 by default) arrive at seeded times within the same minute and enter where the
  fast track's last update enters: ``IntakeService.submit`` of the running bot (triage, corroboration,
  scrypt receipt hash, one transaction with the outbox row), then the bot's own "committed" hook that
  wakes the dispatcher. One at a time, as python-telegram-bot hands updates to handlers (the bot does not
  process updates concurrently): the bot at its ceiling. The conversation turns before the submit
  (~4 updates, each a persisted state and a reply) are not replayed for them: the real-path reporters
  measure what those cost, and the summary computes what 10,000 whole conversations would take.

Then the outbox drains in two phases, on the same database:

(a) Telegram's pace: the dispatcher's own per-minute budget and the sandbox's per-group limit, until every
    P1 ticket is in the group. The waiting is fast-forwarded: once all reports are committed, the sandbox
    clock (by which both the sandbox's limits and, here, the dispatcher's budget are measured) runs
    ``--speed`` times faster, and the dispatcher's 2-second tick is repeated at the same virtual interval.
    Times in this phase are given in sandbox ("Telegram") seconds.
(b) Raised limits: the sandbox's limits off and the dispatcher's budget unbounded, to show what the bot
    itself can deliver per second; for at most ``--drain-seconds``, the rest computed from that rate.

The Telegram-limited time to drain everything is computed from the pace measured in (a), and labelled so.
P1 re-alerts (escalation) are switched off (24 h): their clock is not fast-forwarded (see the README).

    .venv/bin/python bench/burst.py            # 10,000 reports in a minute (make bench-burst)
    .venv/bin/python bench/burst.py --quick    # 2,000 reports in 30 s: a smoke run of about 3 minutes

The default run takes as long as committing 10,000 reports one at a time (about 80 ms each on a quiet
2-core machine, mostly the scrypt receipt hash and corroboration), plus at most 5 minutes for (a) and 1.5
for (b).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import BENCH_KEY, Population, _place_details

from bot.app import build_application, get_database, start_application, stop_application
from bot.config import load_settings
from bot.crypto import Keyring
from bot.domain.models import (
    Condition,
    ContactPreference,
    PeopleCount,
    Place,
    Possession,
    Report,
    ReporterType,
)
from bot.keys import generate_secret_key
from bot.services.alerts import DIGEST_MAX_CASES
from handlers.coordinators.delivery import ALERTS_KEY, AlertRunner, deliver_alerts
from handlers.intake.conversation import SERVICES_KEY, IntakeContext
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

JSON = dict[str, Any]
TOKEN = "987654323:BURST-bench-token"
BOT_ID = int(TOKEN.split(":")[0])
ALERT_TICK_SECONDS = 2.0  # bot.app.ALERT_INTERVAL_SECONDS: how often the dispatcher runs by itself
POLL_SECONDS = 0.25
FLOW_TIMEOUT_SECONDS = 600.0
SEVERE = (Condition.VIOLENCE, Condition.SEXUAL_ABUSE, Condition.LOCKED_IN)
MILD = (Condition.WAGES_WITHHELD, Condition.LONG_HOURS, Condition.DECEIVED, Condition.FORCED_SCAMMING)
ONE_LINE = "They are beating people in building B right now"


# --- the planted reports ---------------------------------------------------------------------------------


@dataclass
class Planned:
    index: int
    at: float  # seconds after the burst starts
    report: Report
    telegram: bool = False
    location: tuple[float, float] | None = None
    committed_at: float | None = None
    case_id: str | None = None
    error: str | None = None


def plan_reports(count: int, telegram: int, window: float, seed: int) -> list[Planned]:
    """``count`` reports at seeded times within ``window`` seconds: about 5 % in danger now with violence
    or confinement (P1), 15 % in danger or held (P2), the rest ordinary (P3/P4); places drawn like
    bench/export.py's synthetic cases. Every ``count // telegram``-th one is a real fast-track reporter."""
    rng = random.Random(seed)
    population = Population(max(count, 1), Keyring(BENCH_KEY))
    times = sorted(rng.uniform(0, window) for _ in range(count))
    step = count // telegram if telegram else 0
    planned = []
    for index, at in enumerate(times):
        area = population.areas[population.area.pick(rng)]
        point = (area.latitude + rng.uniform(-0.05, 0.05), area.longitude + rng.uniform(-0.05, 0.05))
        if step and index % step == step // 2 and sum(p.telegram for p in planned) < telegram:
            report = Report(immediate_danger=True, fast_track=True, details=ONE_LINE)  # as the flow fills it
            planned.append(Planned(index, at, report, telegram=True, location=point))
            continue
        kind = rng.random()
        conditions: set[Condition] = {rng.choice(MILD)}
        danger: bool | None = False
        if kind < 0.05:
            danger = True
            conditions.add(rng.choice(SEVERE))
        elif kind < 0.20:
            danger = rng.random() < 0.5
            conditions.add(rng.choice(SEVERE) if not danger else rng.choice(MILD))
        elif kind < 0.6:
            conditions.add(rng.choice(MILD))
        else:
            danger = None
            conditions = set() if rng.random() < 0.6 else conditions
        with_point = rng.random() < 0.4
        report = Report(
            reporter_type=rng.choice(list(ReporterType)),
            immediate_danger=danger,
            place=Place(
                latitude=point[0] if with_point else None,
                longitude=point[1] if with_point else None,
                country=area.country,
                area_id=area.id,
                details=_place_details(rng),
            ),
            passport=rng.choice([*Possession, None]),
            phone=rng.choice([*Possession, None]),
            conditions=frozenset(conditions),
            people=rng.choice([*PeopleCount, None]),
            details="Synthetic burst report: they keep us in the building and take our phones.",
            contact=rng.choice([*ContactPreference, None]),
            language=rng.choice(("en", "vi", "zh-hans", "id", "th")),
        )
        planned.append(Planned(index, at, report))
    return planned


# --- the real path: a reporter on the danger fast track ---------------------------------------------------


async def _bot_message(
    sb: SandboxClient, user_id: int, after: int, check: Callable[[JSON], bool], within: float
) -> JSON:
    """The first bot message after ``after`` that passes ``check`` (polled, for at most ``within`` s)."""
    deadline = time.monotonic() + within
    for _ in range(int(within / POLL_SECONDS) + 1):
        for message in await sb.messages(user_id, bot_id=BOT_ID):
            if message["from"]["is_bot"] and message["message_id"] > after and check(message):
                return message
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"no answer within {within:.0f} s")


def _has_button(prefix: str) -> Callable[[JSON], bool]:
    def check(message: JSON) -> bool:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return any(str(b.get("callback_data", "")).startswith(prefix) for row in rows for b in row)

    return check


def _is_receipt(message: JSON) -> bool:
    return "Your code:" in str(message.get("text", ""))


async def fast_track(sb: SandboxClient, user_id: int, point: tuple[float, float]) -> None:
    """/start, "danger now: yes", a shared location, one line; returns once the receipt is shown."""
    sent = await sb.send_text(user_id, "/start", bot_id=BOT_ID)
    question = await _bot_message(
        sb, user_id, sent["message"]["message_id"], _has_button("s:danger:"), FLOW_TIMEOUT_SECONDS
    )
    mark = max(m["message_id"] for m in await sb.messages(user_id, bot_id=BOT_ID))
    await sb.press_button(user_id, question["message_id"], data="s:danger:yes", bot_id=BOT_ID)
    await _bot_message(sb, user_id, mark, lambda m: "text" in m, FLOW_TIMEOUT_SECONDS)
    sent = await sb.send(user_id, bot_id=BOT_ID, location={"latitude": point[0], "longitude": point[1]})
    await _bot_message(
        sb,
        user_id,
        sent["message"]["message_id"],
        lambda m: m.get("text") == "In one line: what is happening?",
        FLOW_TIMEOUT_SECONDS,
    )
    sent = await sb.send_text(user_id, ONE_LINE, bot_id=BOT_ID)
    await _bot_message(sb, user_id, sent["message"]["message_id"], _is_receipt, FLOW_TIMEOUT_SECONDS)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class Results:
    planned: int = 0
    telegram: int = 0
    window: float = 0.0
    arrivals_span: float = 0.0
    all_committed: float = 0.0
    commit_ms: list[float] = field(default_factory=list)
    telegram_seconds: list[float] = field(default_factory=list)
    telegram_failed: int = 0
    service_failed: int = 0
    cases: int = 0
    new_case_rows: int = 0
    by_priority: Counter[int] = field(default_factory=Counter)
    cpu_arrival: float = 0.0
    # (a) Telegram's pace
    p1_tickets: int = 0
    p1_done_virtual: float | None = None  # sandbox seconds from the first arrival to the last P1 ticket
    a_virtual: float = 0.0
    a_wall: float = 0.0
    a_tickets: int = 0
    a_digests: int = 0
    digests_before_last_p1: int = 0
    tickets_before_last_p1: int = 0
    low_priority: int = 0
    order_violations: int = 0
    order_violations_beyond_flight: int = 0
    transcript_matches: bool = False
    group_429: int = 0
    group_sends_per_minute_max: float = 0.0
    # (b) raised limits
    b_tickets: int = 0
    b_seconds: float = 0.0
    b_left: int = 0
    peak_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


async def _count(db: Any, sql: str, params: tuple[Any, ...] = ()) -> int:
    rows = list(await db.execute_fetchall(sql, params))
    return int(rows[0][0] or 0)


async def _every(seconds: float, action: Callable[[], Awaitable[None] | None], stop: asyncio.Event) -> None:
    while not stop.is_set():
        result = action()
        if result is not None:
            await result
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def run(args: argparse.Namespace) -> Results:
    res = Results()
    planned = plan_reports(args.reports, args.telegram, args.window, args.seed)
    res.planned, res.telegram, res.window = len(planned), sum(p.telegram for p in planned), args.window
    with tempfile.TemporaryDirectory(prefix="beacon-burst-") as scratch:
        async with SandboxServer(tokens=[TOKEN]) as server, SandboxClient(server.url) as sb:
            world = server.world
            assert world is not None
            coordinator = await sb.create_user("Coordinator", language_code="en")
            group = await sb.create_group(
                "Coordinators",
                forum=True,
                admins=[coordinator["id"]],
                bots=[{"bot_id": BOT_ID, "admin": True, "can_manage_topics": True}],
            )
            group_id = int(group["id"])
            settings = load_settings(
                _env_file=None,
                bot_token=TOKEN,
                api_url=server.url,
                database=Path(scratch) / "burst.db",
                secret_key=generate_secret_key(),
                coordinator_chat_id=group_id,
                admins=[coordinator["id"]],
                p1_escalation_minutes=24 * 60,
            )
            app = build_application(settings)
            await start_application(app)
            try:
                runner = app.bot_data[ALERTS_KEY]
                services = app.bot_data[SERVICES_KEY]
                assert isinstance(runner, AlertRunner)
                assert isinstance(services, IntakeContext)
                # The dispatcher's budget on the sandbox clock (time.time() until phase (a) moves it), so
                # that fast-forwarding moves both Telegram's limits and the bot's pacing together.
                runner.dispatcher.monotonic = world.clock.now
                db = get_database(app)
                await _arrive(args, res, planned, sb, services, world)
                await _drain_at_telegram_pace(args, res, app, runner, sb, world, db, group_id)
                await _drain_unlimited(args, res, app, runner, sb, db)
                await _check_order(res, sb, db, group_id)
                res.group_429 = sum(
                    1
                    for c in world.calls
                    if str(c.get("chat_id")) == str(group_id) and c.get("error_code") == 429
                )
            finally:
                await stop_application(app)
    res.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


async def _arrive(
    args: argparse.Namespace,
    res: Results,
    planned: list[Planned],
    sb: SandboxClient,
    services: IntakeContext,
    world: Any,
) -> None:
    users = {}
    for p in planned:
        if p.telegram:
            users[p.index] = int((await sb.create_user(f"Reporter {p.index}", language_code="en"))["id"])
    cpu_before = time.process_time()
    started = time.perf_counter()

    async def reporter(p: Planned) -> None:
        await asyncio.sleep(max(0.0, started + p.at - time.perf_counter()))
        begun = time.perf_counter()
        try:
            assert p.location is not None
            await fast_track(sb, users[p.index], p.location)
        except (TimeoutError, OSError) as error:
            p.error = f"{type(error).__name__}: {error}"
            res.telegram_failed += 1
            return
        p.committed_at = time.perf_counter() - started
        res.telegram_seconds.append(time.perf_counter() - begun)

    async def service_path() -> None:
        """One report at a time, each at its arrival time or as soon as the previous one is done."""
        for p in planned:
            if p.telegram:
                continue
            await asyncio.sleep(max(0.0, started + p.at - time.perf_counter()))
            begun = time.perf_counter()
            try:
                receipt = await services.intake.submit(
                    p.report, reporter_id=10**9 + p.index, contact_chat_id=None
                )
            except Exception as error:  # a lost report is what this benchmark looks for
                p.error = f"{type(error).__name__}: {error}"
                res.service_failed += 1
                continue
            if services.committed is not None:
                services.committed(None)  # type: ignore[arg-type]  # the hook only schedules a job
            p.case_id = receipt.case_id
            p.committed_at = time.perf_counter() - started
            res.commit_ms.append((time.perf_counter() - begun) * 1e3)
            if len(res.commit_ms) % 1000 == 0:
                _note(f"  {len(res.commit_ms):,} reports committed ({p.committed_at:.0f} s)")

    await asyncio.gather(service_path(), *(reporter(p) for p in planned if p.telegram))
    res.cpu_arrival = time.process_time() - cpu_before
    res.arrivals_span = max(p.at for p in planned) - min(p.at for p in planned)
    res.all_committed = max((p.committed_at or 0.0) for p in planned)
    for p in planned:
        if p.error:
            res.notes.append(f"report {p.index} ({'telegram' if p.telegram else 'service'}): {p.error}")


async def _pending_p1(db: Any) -> int:
    return await _count(
        db,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'new_case' AND priority = 1 AND sent_at IS NULL "
        "AND dead_at IS NULL",
    )


async def _drain_at_telegram_pace(
    args: argparse.Namespace,
    res: Results,
    app: Any,
    runner: AlertRunner,
    sb: SandboxClient,
    world: Any,
    db: Any,
    group_id: int,
) -> None:
    res.cases = await _count(db, "SELECT COUNT(*) FROM cases")
    res.new_case_rows = await _count(db, "SELECT COUNT(*) FROM outbox WHERE kind = 'new_case'")
    res.by_priority = Counter(
        {
            int(p): int(n)
            for p, n in await db.execute_fetchall("SELECT priority, COUNT(*) FROM cases GROUP BY 1")
        }
    )
    res.p1_tickets = res.by_priority.get(1, 0)
    res.low_priority = await _count(
        db, "SELECT COUNT(*) FROM outbox WHERE kind = 'new_case' AND priority >= 3"
    )
    _note(
        f"all committed after {res.all_committed:.0f} s; draining P1 tickets at Telegram's pace, "
        f"fast-forwarded x{args.speed:g} ..."
    )
    first_call = len(world.calls)  # world.calls keeps the last 200,000 calls: enough for 10,000 tickets
    speed = args.speed
    stop = asyncio.Event()
    wall_started = time.perf_counter()
    virtual_started = world.clock.now()
    last = [time.perf_counter()]

    def forward() -> None:
        now = time.perf_counter()
        world.clock.offset += (now - last[0]) * (speed - 1)
        last[0] = now

    def tick() -> None:
        app.job_queue.run_once(deliver_alerts, 0, name="bench tick")

    tasks = [
        asyncio.create_task(_every(0.02, forward, stop)),
        asyncio.create_task(_every(ALERT_TICK_SECONDS / speed, tick, stop)),
    ]
    try:
        for _ in range(int(args.p1_wall_limit / 0.2)):
            if not await _pending_p1(db):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    res.a_wall = time.perf_counter() - wall_started
    res.a_virtual = world.clock.now() - virtual_started
    if await _pending_p1(db):
        res.notes.append(f"phase (a) stopped after {args.p1_wall_limit:.0f} s with P1 tickets still waiting")
    every = [c for c in world.calls if str(c.get("chat_id")) == str(group_id) and c.get("ok")]
    calls = list(world.calls)[first_call:]
    group_sends = [c for c in calls if str(c.get("chat_id")) == str(group_id) and c.get("ok")]
    res.a_digests = sum(1 for c in group_sends if _is_digest(c))
    res.a_tickets = sum(1 for c in group_sends if c["method"] == "createForumTopic")
    # Phase (a) ends as the last P1 ticket is posted: every digest so far went out before it.
    res.digests_before_last_p1 = sum(1 for c in every if _is_digest(c))
    res.tickets_before_last_p1 = sum(1 for c in every if c["method"] == "createForumTopic")
    # The busiest minute of sends into the group, by the sandbox clock (Telegram allows about 20).
    times = sorted(c["time"] for c in calls if str(c.get("chat_id")) == str(group_id) and c.get("ok"))
    busiest, j = 0, 0
    for i, moment in enumerate(times):
        while times[j] <= moment - 60.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    res.group_sends_per_minute_max = busiest
    if not await _pending_p1(db):
        res.p1_done_virtual = res.a_virtual + res.all_committed
    _note(
        f"  phase (a): {res.a_tickets} tickets and {res.a_digests} digests in {res.a_virtual / 60:.1f} "
        f"Telegram minutes ({res.a_wall:.0f} s wall)"
    )


def _is_digest(call: JSON) -> bool:
    """A message in the group's general chat: the burst digest (cards go into their case's topic)."""
    return bool(call["method"] == "sendMessage" and call.get("message_thread_id") is None)


async def _drain_unlimited(
    args: argparse.Namespace, res: Results, app: Any, runner: AlertRunner, sb: SandboxClient, db: Any
) -> None:
    await sb.set_limits(enabled=False)
    runner.dispatcher.per_minute = 10**9
    pending_sql = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
    before = await _count(db, pending_sql)
    _note(f"phase (b): {before:,} alerts left, limits raised ...")
    stop = asyncio.Event()

    def tick() -> None:
        app.job_queue.run_once(deliver_alerts, 0, name="bench tick")

    ticker = asyncio.create_task(_every(0.05, tick, stop))
    started = time.perf_counter()
    try:
        for _ in range(int(args.drain_seconds / 0.5)):
            if not await _count(db, pending_sql):
                break
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await ticker
    res.b_seconds = time.perf_counter() - started
    res.b_left = await _count(db, pending_sql)
    res.b_tickets = before - res.b_left


async def _check_order(res: Results, sb: SandboxClient, db: Any, group_id: int) -> None:
    """No P3/P4 ticket went out while a P1 committed before it was still waiting (by the outbox's own
    times); and the group's transcript shows the cards in the order the outbox says they were sent."""
    violations = await db.execute_fetchall(
        "SELECT low.id, p1.id, (julianday(low.sent_at) - julianday(p1.created_at)) * 86400 "
        "FROM outbox low JOIN outbox p1 ON p1.kind = 'new_case' AND p1.priority = 1 "
        "AND p1.created_at < low.sent_at AND (p1.sent_at IS NULL OR p1.sent_at > low.sent_at) "
        "WHERE low.kind = 'new_case' AND low.priority >= 3 AND low.sent_at IS NOT NULL"
    )
    res.order_violations = len(violations)
    # One ticket may already be on its way when a P1 is committed: that is not a violation of priority.
    res.order_violations_beyond_flight = sum(1 for row in violations if float(row[2]) > 5.0)
    sent = await db.execute_fetchall(
        "SELECT case_id FROM outbox WHERE kind = 'new_case' AND sent_at IS NOT NULL ORDER BY sent_at, id"
    )
    cards = []
    for message in await sb.messages(group_id):
        first = str(message.get("text", "")).split("\n", 1)[0]
        if message["from"]["is_bot"] and "Case " in first:
            cards.append(first.rsplit("Case ", 1)[1].split()[0])
    expected = [str(row[0]) for row in sent]
    res.transcript_matches = cards == expected
    if not res.transcript_matches:
        res.notes.append(f"transcript: {len(cards)} cards, outbox: {len(expected)} sent new-case alerts")


# --- report ---------------------------------------------------------------------------------------------


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def print_report(res: Results, args: argparse.Namespace, total: float) -> None:
    print(f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}")
    print()
    lost = res.planned - res.cases - res.telegram_failed - res.service_failed
    commit = sorted(res.commit_ms)
    p1 = res.by_priority.get(1, 0)
    a_minutes = res.a_virtual / 60 if res.a_virtual else 0.0
    pace = res.a_tickets / a_minutes if a_minutes else 0.0
    # The dispatcher counts two messages per ticket and per digest against the group's budget.
    units = 2 * (res.a_tickets + res.a_digests) / a_minutes if a_minutes else 0.0
    digests_needed = -(-res.low_priority // DIGEST_MAX_CASES)
    whole = 2 * (res.new_case_rows + digests_needed) / units * 60 if units else 0.0
    b_rate = res.b_tickets / res.b_seconds if res.b_seconds else 0.0
    total_tickets = res.new_case_rows
    rows = [
        ("reports planted", f"{res.planned:,} ({res.telegram} through the real fast-track flow)"),
        ("arrival window", f"{res.arrivals_span:.1f} s (planned within {res.window:.0f} s)"),
        ("priorities as triaged", ", ".join(f"P{p}: {n:,}" for p, n in sorted(res.by_priority.items()))),
        ("time until all committed", f"{res.all_committed:.0f} s after the first arrival"),
        (
            "committed / lost",
            f"{res.cases:,} cases, {res.new_case_rows:,} new-case alerts; "
            f"failed: {res.service_failed + res.telegram_failed}; unaccounted: {lost}",
        ),
        (
            "submit, service path (median / p95)",
            f"{statistics.median(commit):.0f} / {commit[int(0.95 * (len(commit) - 1))]:.0f} ms"
            if commit
            else "-",
        ),
        (
            "fast-track flow, real path (median / max)",
            f"{statistics.median(res.telegram_seconds):.1f} / {max(res.telegram_seconds):.1f} s"
            if res.telegram_seconds
            else "-",
        ),
        ("CPU during arrival (all in one process)", f"{res.cpu_arrival:.0f} s"),
        (
            "(a) P1 tickets in the group",
            f"{p1:,} after {_duration(res.p1_done_virtual)} (Telegram time, from the first arrival)"
            if res.p1_done_virtual is not None
            else "not all within the limit",
        ),
        (
            "(a) sent at Telegram's pace",
            f"{res.a_tickets:,} tickets + {res.a_digests} burst digests in {a_minutes:.1f} Telegram "
            f"minutes ({pace:.1f} tickets/min; {res.a_wall:.0f} s wall at x{args.speed:g})",
        ),
        (
            "(a) before the last P1 ticket",
            f"{res.tickets_before_last_p1:,} tickets (P1 first, then P2 as budget allowed) and "
            f"{res.digests_before_last_p1} burst digests (P3/P4 announcements) were posted",
        ),
        (
            "(a) busiest minute into the group",
            f"{res.group_sends_per_minute_max:.0f} requests (Telegram: about 20)",
        ),
        ("429 from the group's flood limit", f"{res.group_429}"),
        (
            "P3/P4 ticket sent while an earlier P1 waited",
            f"{res.order_violations} ({res.order_violations_beyond_flight} beyond one in-flight ticket)",
        ),
        ("group transcript order = outbox order", "yes" if res.transcript_matches else "NO"),
        (
            "(b) bot-side drain, limits raised",
            f"{res.b_tickets:,} alerts in {res.b_seconds:.0f} s = {b_rate:.1f}/s"
            + (f"; {res.b_left:,} left at the time limit" if res.b_left else " (outbox empty)"),
        ),
        (
            "computed: whole outbox at Telegram's pace",
            f"{_duration(whole)} ({total_tickets:,} tickets and {digests_needed} digests at the measured "
            f"{units:.1f} budget messages per Telegram minute, 2 per ticket or digest)"
            if units
            else "-",
        ),
        (
            "computed: whole outbox at the bot's own rate",
            f"{_duration(total_tickets / b_rate)} ({total_tickets:,} at {b_rate:.1f}/s)" if b_rate else "-",
        ),
        ("peak memory (sandbox + bot + load)", f"{res.peak_mib:.0f} MiB"),
        ("whole run", _duration(total)),
    ]
    print("| measure | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if res.notes:
        print()
        for note in res.notes[:20]:
            print(f"- {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument(
        "--quick", action="store_true", help="2,000 reports within 30 s, 10 through Telegram: a smoke run"
    )
    parser.add_argument("--telegram", type=int, default=30, help="of them, through the real fast track")
    parser.add_argument("--window", type=float, default=60.0, help="arrival window, seconds")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--speed", type=float, default=40.0, help="fast-forward factor in phase (a)")
    parser.add_argument(
        "--p1-wall-limit", type=float, default=300.0, help="phase (a) stops after this many wall seconds"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=90.0, help="phase (b) stops after this many seconds"
    )
    args = parser.parse_args()
    if args.quick:
        args.reports, args.telegram, args.window = 2_000, 10, 30.0
    logging.disable(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" as we tick
    started = time.perf_counter()
    res = asyncio.run(run(args))
    print_report(res, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
