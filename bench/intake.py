"""Benchmark: N simulated reporters complete the whole report flow at once, against Beacon and a baseline.

The sandbox runs in this process on loopback; each bot under test runs in its own process (so its CPU
seconds and peak memory are its own), long-polling the sandbox over real HTTP. Every simulated reporter
acts through the sandbox's control API (HTTP) and times each update from the moment it sends it until
the bot's answer for it (the next question, the redrawn keyboard, the receipt) is stored in the sandbox:
a hook on the sandbox's calls log wakes the reporter, so nothing polls.

The baseline (bench/baseline_bot.py) is what a team would build in an afternoon: a python-telegram-bot
ConversationHandler with PicklePersistence asking the same questions with the same kinds of updates
(buttons, typed text), making the same Bot API calls per update.

    .venv/bin/python bench/intake.py                      # 1,000 reporters, Beacon then the baseline
    .venv/bin/python bench/intake.py --reporters 200 --only beacon
    .venv/bin/python bench/intake.py --only beacon --profile /tmp/beacon.prof   # cProfile of the bot

Telegram's flood limits are off in the sandbox, and Beacon's own overall pacing (python-telegram-bot's
AIORateLimiter at ~30 messages/s) is lifted for the measurement (`--paced` keeps it): this measures how
many updates each bot can turn around, not Telegram's pacing. Group pacing and retries stay as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle  # nosec B403: reads the baseline's own pickle file, written by this benchmark
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.client import SandboxClient  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.world import Limits, World  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The areas the reporters name: buttons of the baseline's area question and Beacon's.
from baseline_bot import AREAS  # noqa: E402

JSON = dict[str, Any]
TOKEN = "987654321:BENCH-intake-token"
BOT_ID = int(TOKEN.split(":")[0])
# A receipt code as Beacon shows it: 16 digits in four groups.
RECEIPT = re.compile(r"(?<!\d)\d{4} \d{4} \d{4} \d{4}(?!\d)")
LANGUAGES = ("en", "vi", "zh-hans")
# How long a bot may take to stop after SIGTERM before it is killed (and that is reported).
STOP_SECONDS = 60
# Bot API methods whose result a reporter sees in its chat.
VISIBLE = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto"})


# ---------------------------------------------------------------------------------------------- the flow


@dataclass(frozen=True)
class Action:
    """One update a reporter sends, and what the bot must show in answer to it."""

    kind: str  # "text" or "press"
    value: str  # the text typed, or the button's callback data
    expect: str  # "question:<step>" (a new message with that step's buttons), "redraw", "receipt", "reply"


def press(step: str, value: str, then: str) -> Action:
    return Action("press", f"s:{step}:{value}", then)


# Distinct buildings: reporter i describes building i % BUILDINGS in area i % len(AREAS), so every 200th
# reporter names the same building in the same area (Beacon links those reports) and most do not.
BUILDINGS = 200


def flow_for(index: int) -> tuple[Action, ...]:
    """A complete report as a witness: 19 updates, 16 button presses and 3 typed messages (the walk of
    tests/e2e/intake_flow.py's default Plan without the victim's details), about reporter `index`'s place."""
    area = AREAS[index % len(AREAS)]
    place = f"Compound {index % BUILDINGS + 1}, the blue building behind the market"
    return (
        Action("text", "/start", "question:danger"),
        press("danger", "no", "question:who"),
        press("who", "witness", "question:victim_ask"),
        press("victim_ask", "no", "question:where"),
        press("where", "c-KH", "question:area"),
        press("area", area, "question:place"),
        Action("text", place, "question:passport"),
        press("passport", "taken", "question:phone"),
        press("phone", "taken", "question:conditions"),
        press("conditions", "locked_in", "redraw"),
        press("conditions", "forced_scamming", "redraw"),
        press("conditions", "done", "question:people"),
        press("people", "21-100", "question:nats"),
        press("nats", "VN", "redraw"),
        press("nats", "done", "question:details"),
        Action("text", "They work sixteen hours a day.", "reply"),
        press("details", "done", "question:contact"),
        press("contact", "on_check_in", "question:review"),
        press("review", "submit", "receipt"),
    )


UPDATES_PER_REPORTER = len(flow_for(0))


def button_data(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


def step_of(message: JSON) -> str | None:
    """The step whose buttons a message carries ("s:<step>:<value>"), if any."""
    for data in button_data(message):
        if data.startswith("s:"):
            return data.split(":", 2)[1]
    return None


# ---------------------------------------------------------------------------------------------- reporters


@dataclass
class Seen:
    at: float
    method: str
    message: JSON


@dataclass
class Reporter:
    user_id: int
    events: list[Seen] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    questions: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    receipt: str | None = None

    def saw(self, method: str, message: JSON) -> None:
        self.events.append(Seen(time.perf_counter(), method, message))
        step = step_of(message)
        if step is not None:
            self.questions[step] = int(message["message_id"])
        self.wake.set()


def matches(expect: str, seen: Seen, pressed_message: int | None) -> bool:
    if expect == "reply":
        return seen.method == "sendMessage"
    if expect == "redraw":
        return seen.method.startswith("edit") and seen.message.get("message_id") == pressed_message
    if expect == "receipt":
        text = str(seen.message.get("text") or "")
        return seen.method == "sendMessage" and bool(RECEIPT.search(text))
    step = expect.removeprefix("question:")
    return seen.method == "sendMessage" and step_of(seen.message) == step


class Watcher:
    """Wakes the reporter of a private chat when the bot under test shows something in it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.reporters: dict[int, Reporter] = {}
        self.polls = asyncio.Event()
        self.methods: dict[str, int] = {}
        original = world.record_call

        def record_call(bot_id: int, method: str, params: JSON, error: Any) -> None:
            original(bot_id, method, params, error)
            self.methods[method] = self.methods.get(method, 0) + 1
            if method == "getUpdates":
                self.polls.set()
            if error is not None or method not in VISIBLE:
                return
            with contextlib.suppress(KeyError, TypeError, ValueError):
                chat_id = int(params["chat_id"])
                reporter = self.reporters.get(chat_id)
                if reporter is None:
                    return
                conversation = world.private[(bot_id, chat_id)]
                if method.startswith("edit"):
                    stored = conversation.messages[int(params["message_id"])]
                else:
                    stored = next(reversed(conversation.messages.values()))
                reporter.saw(method, stored.data)

        world.record_call = record_call  # type: ignore[method-assign]


async def walk(sb: SandboxClient, reporter: Reporter, flow: Sequence[Action], step_timeout: float) -> None:
    """Give every answer of the flow, waiting for the bot's answer to each before the next."""
    for action in flow:
        mark = len(reporter.events)
        pressed: int | None = None
        started = time.perf_counter()
        if action.kind == "text":
            await sb.send_text(reporter.user_id, action.value, bot_id=BOT_ID)
        else:
            step = action.value.split(":", 2)[1]
            pressed = reporter.questions[step]
            await sb.press_button(reporter.user_id, pressed, data=action.value, bot_id=BOT_ID)
        deadline = started + step_timeout
        while True:
            found = next(
                (s for s in reporter.events[mark:] if matches(action.expect, s, pressed)),
                None,
            )
            if found is not None:
                reporter.latencies.append(found.at - started)
                if action.expect == "receipt":
                    reporter.receipt = RECEIPT.search(str(found.message.get("text")))[0]  # type: ignore[index]
                break
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {action} within {step_timeout} s")
            reporter.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reporter.wake.wait(), remaining)


# ---------------------------------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss(pid: int) -> int:
    """Peak resident memory of a process in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Result:
    name: str
    reporters: int
    updates: int
    seconds: float
    cpu_seconds: float
    peak_rss: int
    latencies: list[float]
    store_bytes: int
    stored_reports: int
    driver_cpu: float
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def percentile(self, q: float) -> float:
        return _quantile(self.latencies, q)


async def spawn(args: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    handle = log.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            *args, env={**os.environ, **env}, cwd=cwd, stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        handle.close()


async def stop(process: asyncio.subprocess.Process) -> int | None:
    """SIGTERM, then SIGKILL after STOP_SECONDS; return the exit status, or None when it had to be killed."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


@dataclass
class Target:
    """How to start one bot under test and read back what it stored."""

    name: str
    command: Callable[[Path], list[str]]
    env: Callable[[Path, str, int], dict[str, str]]
    stored: Callable[[Path], tuple[int, int]]  # (reports stored, bytes on disk)


def beacon_target(paced: bool, profile: Path | None, http_client: str | None) -> Target:
    from bot.keys import generate_secret_key

    def command(scratch: Path) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--serve-beacon"]

    def env(scratch: Path, url: str, group_id: int) -> dict[str, str]:
        values = {
            "BEACON_BOT_TOKEN": TOKEN,
            "BEACON_API_URL": url,
            "BEACON_DATABASE": str(scratch / "beacon.db"),
            "BEACON_SECRET_KEY": generate_secret_key(),
            "BEACON_COORDINATOR_CHAT_ID": str(group_id),
            "BEACON_LOG_LEVEL": "WARNING",
            # One account per reporter here, but keep the limit out of the way of reruns.
            "BEACON_REPORTS_PER_HOUR": "1000",
            "BENCH_PACED": "1" if paced else "0",
        }
        if profile is not None:
            values["BENCH_PROFILE"] = str(profile)
        if http_client is not None:
            values["BEACON_HTTP_CLIENT"] = http_client
        return values

    def stored(scratch: Path) -> tuple[int, int]:
        path = scratch / "beacon.db"
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            count = int(conn.execute("SELECT count(*) FROM cases").fetchone()[0])
        size = sum(p.stat().st_size for p in scratch.glob("beacon.db*") if p.is_file())
        return count, size

    return Target(f"beacon ({http_client or 'default settings'})", command, env, stored)


def baseline_target() -> Target:
    def command(scratch: Path) -> list[str]:
        return [sys.executable, str(ROOT / "bench" / "baseline_bot.py")]

    def env(scratch: Path, url: str, group_id: int) -> dict[str, str]:
        return {
            "BASELINE_TOKEN": TOKEN,
            "BASELINE_API_URL": url,
            "BASELINE_PICKLE": str(scratch / "base.pkl"),
            "BASELINE_GROUP": str(group_id),
        }

    def stored(scratch: Path) -> tuple[int, int]:
        path = scratch / "base.pkl"
        with path.open("rb") as handle:
            data = pickle.load(handle)  # nosec B301: our own benchmark's file
        return len(data["bot_data"].get("reports", [])), path.stat().st_size

    return Target("baseline", command, env, stored)


async def measure(target: Target, reporters: int, step_timeout: float) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"bench-{target.name}-") as tmp:
        scratch = Path(tmp)
        async with (
            SandboxServer(tokens=[TOKEN], limits=Limits(enabled=False)) as server,
            SandboxClient(server.url, timeout=step_timeout) as sb,
        ):
            assert server.world is not None
            watcher = Watcher(server.world)
            coordinator = await sb.create_user("Coordinator", language_code="en")
            group = await sb.create_group(
                "Coordinators",
                forum=True,
                admins=[coordinator["id"]],
                bots=[{"bot_id": BOT_ID, "admin": True, "can_manage_topics": True}],
            )
            people = []
            for index in range(reporters):
                user = await sb.create_user(
                    f"Reporter {index}", language_code=LANGUAGES[index % len(LANGUAGES)]
                )
                people.append(Reporter(int(user["id"])))
            watcher.reporters = {r.user_id: r for r in people}

            log = scratch / "bot.log"
            process = await spawn(
                target.command(scratch), target.env(scratch, server.url, int(group["id"])), scratch, log
            )
            try:
                # Started: the bot polls for updates.
                await asyncio.wait_for(watcher.polls.wait(), 60)
                await asyncio.sleep(1.0)  # start-up calls (command menus) settle before the clock starts
                watcher.methods.clear()
                cpu_before = proc_cpu_seconds(process.pid)
                driver_before = self_cpu_seconds()
                started = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(walk(sb, r, flow_for(i), step_timeout) for i, r in enumerate(people)),
                    return_exceptions=True,
                )
                seconds = time.perf_counter() - started
                cpu = proc_cpu_seconds(process.pid) - cpu_before
                driver_cpu = self_cpu_seconds() - driver_before
                peak = proc_peak_rss(process.pid)
                methods = dict(watcher.methods)
            finally:
                code = await stop(process)
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            notes: list[str] = []
            if code is None:
                notes.append(f"did not stop within {STOP_SECONDS} s of SIGTERM: killed")
            elif code != 0:
                notes.append(f"exit status {code}; see the log: {log.read_text()[-2000:]}")
            if failures:
                notes.append(f"{len(failures)} reporters failed, e.g. {failures[0]!r}")
            stored, size = target.stored(scratch)
            receipts = [r.receipt for r in people if r.receipt]
            if len(receipts) != reporters:
                notes.append(f"only {len(receipts)} of {reporters} reporters got a receipt")
            if len(set(receipts)) != len(receipts):
                notes.append("two reporters got the same receipt code")
            if stored != reporters:
                notes.append(f"{stored} reports stored for {reporters} reporters")
            if target.name.startswith("beacon"):
                notes.extend(beacon_outbox(scratch / "beacon.db"))
            latencies = [x for r in people for x in r.latencies]
            slowest = sorted(
                (
                    (_quantile([r.latencies[i] for r in people if len(r.latencies) > i], 0.99), action)
                    for i, action in enumerate(flow_for(0))
                ),
                key=lambda pair: -pair[0],
            )[:3]
            notes.append(
                "slowest steps (p99): "
                + ", ".join(f"{a.kind} {a.value!r} {q * 1000:.0f} ms" for q, a in slowest)
            )
            per_update = ", ".join(
                f"{name} {count / max(1, len(latencies)):.2f}" for name, count in sorted(methods.items())
            )
            notes.append(f"Bot API calls per update: {per_update}")
            return Result(
                target.name,
                reporters,
                len(latencies),
                seconds,
                cpu,
                peak,
                latencies,
                size,
                stored,
                driver_cpu,
                notes,
            )


def beacon_outbox(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn, contextlib.suppress(sqlite3.Error):
        rows = conn.execute("SELECT count(*), count(sent_at) FROM outbox").fetchone()
        return [f"outbox: {rows[0]} alerts queued, {rows[1]} sent by the end of the run"]
    return []


# ---------------------------------------------------------------------------------------------- reporting


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def row(result: Result) -> str:
    ms = 1000
    return (
        f"| {result.name} | {result.reporters} | {result.updates} | {result.seconds:.1f} | {result.rate:.1f} "
        f"| {result.percentile(0.50) * ms:.0f} / {result.percentile(0.95) * ms:.0f} / "
        f"{result.percentile(0.99) * ms:.0f} | {result.cpu_seconds / result.updates * 1000:.2f} "
        f"| {result.peak_rss / 2**20:.0f} | {result.store_bytes / max(1, result.stored_reports):,.0f} "
        f"| {result.driver_cpu / result.updates * 1000:.2f} |"
    )


HEADER = (
    "| bot | reporters | updates | seconds | updates/s | p50 / p95 / p99 ms | bot CPU s / 1000 updates "
    "| bot peak RSS MiB | bytes on disk / report | driver+sandbox CPU s / 1000 |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
)


def report(results: list[Result]) -> int:
    print(HEADER)
    for result in results:
        print(row(result))
    failed = False
    for result in results:
        for note in result.notes:
            print(f"{result.name}: {note}")
            failed = failed or not note.startswith(("outbox", "Bot API", "slowest", "did not stop"))
    beacon = next((r for r in results if r.name.startswith("beacon")), None)
    baseline = next((r for r in results if r.name == "baseline"), None)
    if beacon is not None and baseline is not None:
        print(f"throughput ratio Beacon / baseline: {beacon.rate / baseline.rate:.2f} (target >= 1.0)")
        cpu = (beacon.cpu_seconds / beacon.updates) / (baseline.cpu_seconds / baseline.updates)
        print(f"CPU per update, Beacon / baseline: {cpu:.2f}")
    return 1 if failed else 0


async def run(args: argparse.Namespace) -> int:
    targets = []
    if args.only in (None, "beacon"):
        targets.append(beacon_target(args.paced, args.profile, args.http_client))
    if args.only in (None, "baseline"):
        targets.append(baseline_target())
    results = []
    for target in targets:
        print(f"{target.name}: {args.reporters} reporters x {UPDATES_PER_REPORTER} updates ...", flush=True)
        results.append(await measure(target, args.reporters, args.step_timeout))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "updates_per_second": r.rate,
                        "p50": r.percentile(0.5),
                        "p95": r.percentile(0.95),
                        "p99": r.percentile(0.99),
                        "cpu_ms_per_update": r.cpu_seconds / r.updates * 1000,
                        "peak_rss": r.peak_rss,
                        "bytes_per_report": r.store_bytes / max(1, r.stored_reports),
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    return report(results)


# ---------------------------------------------------------------------------------------------- the bot


def serve_beacon() -> None:
    """Run Beacon as `beacon run` does (settings from BEACON_*), optionally unpaced and profiled."""
    from telegram import Update

    from bot.app import build_application, configure_logging
    from bot.config import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, redact=[settings.bot_token.get_secret_value()])
    paced = os.environ.get("BENCH_PACED") == "1"
    application = build_application(settings) if paced else build_application(settings, overall_max_rate=0)
    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reporters", type=int, default=1000, help="simulated reporters (default 1000)")
    parser.add_argument("--only", choices=("beacon", "baseline"), help="measure one bot only")
    parser.add_argument("--step-timeout", type=float, default=120.0, help="seconds to wait for one answer")
    parser.add_argument("--paced", action="store_true", help="keep Beacon's overall ~30 messages/s pacing")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the Beacon process here")
    parser.add_argument(
        "--http-client", help="BEACON_HTTP_CLIENT for the Beacon process (default: its setting)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--serve-beacon", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_beacon:
        serve_beacon()
        return 0
    if not 1 <= args.reporters <= 10_000:
        parser.error("--reporters must be from 1 to 10000")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
