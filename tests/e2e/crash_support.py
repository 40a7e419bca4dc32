"""The pieces of the SIGKILL crash suite: a `beacon run` process that is killed and started again over the
same database and secret, reporters who keep going through the restarts as a person would, a coordinator
pressing card buttons, and the invariants read from the database and the sandbox's transcripts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiosqlite

from bot.crypto import Keyring
from bot.keys import decode_secret_key
from bot.services.alerts import IN_FLIGHT_KEY, POSSIBLE_DUPLICATE_KEY
from sandbox.client import SandboxClient, SandboxError
from storage.cases import CaseStore
from tests.e2e.intake_flow import CODE

JSON = dict[str, Any]
# What the coordinators see on a ticket (re)posted after a send whose outcome was unknowable.
FLAG = "⚠️ Possible duplicate: sending was interrupted, so this may have been posted twice."
ALREADY = "This report was already received."
DONE = "Done."
UNASSIGN = "↩️ Unassign"
# The answers of every walk (skips where possible); the place is typed: it carries the walk's marker.
ANSWERS = {
    "danger": "no",
    "who": "skip",
    "victim_ask": "no",
    "where": "skip",
    "passport": "skip",
    "phone": "skip",
    "conditions": "done",
    "people": "skip",
    "nats": "done",
    "details": "done",
    "contact": "no",
    "review": "submit",
}
TYPED = "place"
PROGRESS_SECONDS = 4.0  # a reply to an action, the bot being up all along, comes well within this
READY_SECONDS = 40.0


class InvariantBroken(AssertionError):
    """An invariant of the crash suite does not hold."""


def step_of(message: JSON) -> str | None:
    """The intake step whose buttons a bot message carries ("s:<step>:<value>"), if any."""
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for b in row:
            data = str(b.get("callback_data", ""))
            if data.startswith("s:"):
                return data.split(":")[1]
    return None


def button_texts(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [str(b.get("text", "")) for row in markup.get("inline_keyboard", []) for b in row]


# --- the bot process ---------------------------------------------------------------------------------


@dataclass
class BotProcess:
    """`beacon run` in its own process; started, SIGKILLed and started again over the same database."""

    sb: SandboxClient
    env: dict[str, str]
    logs: Path
    process: asyncio.subprocess.Process | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    generation: int = 0
    kills: int = 0
    starting: float = 0.0  # seconds spent waiting for processes to poll, in all
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start a new process and wait until it polls for updates (it then handles what waited)."""
        assert self.process is None
        calls = await self.sb.calls("getUpdates")
        after = max([int(c["seq"]) for c in calls], default=0)
        self.generation += 1
        self._log = (self.logs / f"bot-{self.generation:03d}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        began = time.monotonic()
        while not await self.sb.calls("getUpdates", after=after):
            if self.process.returncode is not None or time.monotonic() > began + READY_SECONDS:
                raise AssertionError(f"beacon run did not start polling; see {self._log.name}")
            await asyncio.sleep(0.05)
        self.starting += time.monotonic() - began
        self.up.set()

    def kill_now(self) -> None:
        """SIGKILL, synchronously (also from inside the sandbox, while it answers one of its requests)."""
        if self.process is not None and self.process.returncode is None and self.up.is_set():
            self.up.clear()
            self.kills += 1
            os.kill(self.process.pid, signal.SIGKILL)

    async def kill(self) -> None:
        self.kill_now()
        await self._reap()

    async def stop(self) -> None:
        """SIGTERM: the graceful stop an operator uses."""
        self.up.clear()
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        await self._reap()

    async def _reap(self) -> None:
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError("beacon run did not stop in time") from None
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("bot-*.log")))


# --- reporters ---------------------------------------------------------------------------------------


@dataclass
class Walk:
    """One report, from /start to its receipt (or to "already received"), identified by its marker."""

    marker: str
    user_id: int
    first_name: str
    receipt: str | None = None  # the 16 digits shown
    already: bool = False  # told "already received" instead of a receipt
    generations: set[int] = field(default_factory=set)  # bot processes that handled part of it
    restarts: list[str] = field(default_factory=list)  # steps at which the reporter had to /start again

    @property
    def finished(self) -> bool:
        return self.receipt is not None or self.already


@dataclass
class Crowd:
    """Reporters walking reports concurrently until told to stop; each report by a new account."""

    sb: SandboxClient
    bot: BotProcess
    bot_id: int
    seed: int
    walks: list[Walk] = field(default_factory=list)
    stopping: bool = False
    submit_pressed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)

    async def run(self, index: int, deadline: float) -> None:
        """One reporter after another in this lane until stopped; each walk is finished once begun."""
        number = 0
        while not self.stopping and time.monotonic() < deadline:
            number += 1
            marker = f"compound-{self.seed}-{index:02d}-{number:03d}"
            name = f"Rep{index:02d}x{number:03d}q"
            user = await self.sb.create_user(name, language_code="en")
            walk = Walk(marker, int(user["id"]), name)
            self.walks.append(walk)
            await self.walk(walk, deadline)

    async def _bot_messages(self, walk: Walk, after: int) -> list[JSON]:
        messages = await self.sb.messages(walk.user_id, bot_id=self.bot_id)
        return [m for m in messages if m["from"]["is_bot"] and m["message_id"] > after]

    async def _newest(self, walk: Walk) -> int:
        messages = await self.sb.messages(walk.user_id, bot_id=self.bot_id)
        return max([int(m["message_id"]) for m in messages], default=0)

    def _finish(self, walk: Walk, messages: list[JSON]) -> bool:
        for m in messages:
            text = str(m.get("text", ""))
            match = CODE.search(text)
            if match and "Your code" in text:
                walk.receipt = "".join(match.groups())
                return True
            if text == ALREADY:
                walk.already = True
                return True
        return False

    async def walk(self, walk: Walk, deadline: float) -> None:
        """Answer the newest question shown, again and again; a reply that never comes (the bot died) is
        answered by doing it again once the bot is back, as a person taps again."""
        start_id = 0
        while time.monotonic() < deadline:
            await asyncio.wait_for(self.bot.up.wait(), max(0.1, deadline - time.monotonic()))
            generation = self.bot.generation
            walk.generations.add(generation)
            try:
                shown = await self._bot_messages(walk, start_id) if start_id else []
                if self._finish(walk, shown):
                    return
                questions = [m for m in shown if step_of(m) is not None]
                mark = await self._newest(walk)
                if not start_id:
                    sent = await self.sb.send_text(walk.user_id, "/start", bot_id=self.bot_id)
                    start_id = int(sent["message"]["message_id"])
                    step = "start"
                else:
                    question = questions[-1] if questions else None
                    step = step_of(question) if question else "none"
                    await self._answer(walk, question, step)
                progressed = await self._progress(walk, mark)
            except SandboxError as error:  # e.g. a button on a message wiped meanwhile
                self.errors.append(f"{walk.marker}: {error}")
                continue
            if not progressed and self.bot.generation == generation and self.bot.up.is_set():
                # The bot was up all along and did not move on: begin again, as a person would.
                walk.restarts.append(step)
                tail = (await self.sb.messages(walk.user_id, bot_id=self.bot_id))[-3:]
                shown = [(m["from"]["is_bot"], str(m.get("text", ""))[:40], step_of(m)) for m in tail]
                self.errors.append(f"{walk.marker} begun again at {step}; the chat ended with {shown}")
                start_id = 0
        raise AssertionError(f"walk {walk.marker} did not finish in time (steps {walk.restarts})")

    async def _answer(self, walk: Walk, question: JSON | None, step: str) -> None:
        if question is None or step not in (*ANSWERS, TYPED):
            # Nothing to answer on screen (all wiped: the report may have been committed): /start.
            await self.sb.send_text(walk.user_id, "/start", bot_id=self.bot_id)
            return
        if step == TYPED:
            await self.sb.send_text(walk.user_id, f"Compound {walk.marker}, floor 4", bot_id=self.bot_id)
            return
        data = f"s:{step}:{ANSWERS[step]}"
        if step == "review":
            self.submit_pressed.set()
        # Forged: a question answered but not yet redrawn without its buttons can still be pressed.
        await self.sb.press_button(
            walk.user_id, int(question["message_id"]), data=data, bot_id=self.bot_id, forge=True
        )

    async def _progress(self, walk: Walk, mark: int) -> bool:
        """Wait for a new question, a receipt or "already received" after `mark`; False on timeout."""

        async def moved() -> bool:
            for m in await self._bot_messages(walk, mark):
                text = str(m.get("text", ""))
                if step_of(m) is not None or text == ALREADY or CODE.search(text):
                    return True
            return not self.bot.up.is_set()  # killed meanwhile: look again once it is back

        try:
            await self.sb.wait_until(moved, timeout=PROGRESS_SECONDS)
        except TimeoutError:
            return False
        return True


# --- the coordinator ---------------------------------------------------------------------------------


@dataclass
class Claim:
    """A coordinator's press of "Claim" on a card, and the bot's answer to it (None: never answered)."""

    case_id: str
    callback_query_id: str
    answer: str | None = None


# --- the invariants ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the checks have established so far, carried from one kill to the next."""

    case_markers: dict[str, str] = field(default_factory=dict)  # case id -> marker found in it
    receipts: dict[str, str] = field(default_factory=dict)  # receipt digits -> case id
    flagged_duplicates: int = 0
    checks: int = 0


@dataclass
class Inspector:
    """Checks the invariants against the database (read-only) and the sandbox transcripts."""

    sb: SandboxClient
    database: Path
    secret_key: str
    group_id: int
    coordinator_id: int
    ledger: Ledger = field(default_factory=Ledger)

    def _keyring(self) -> Keyring:
        return Keyring(decode_secret_key(self.secret_key))

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.database.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)) as conn:
            try:
                return list(conn.execute(sql, params).fetchall())
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return []  # not migrated yet
                raise

    async def _read_new_cases(self, case_ids: list[str]) -> None:
        """Decrypt the report of each case not seen before and note the walk marker it holds."""
        new = [c for c in case_ids if c not in self.ledger.case_markers]
        if not new:
            return
        async with aiosqlite.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            cases = CaseStore(conn, self._keyring())
            for case_id in new:
                case = await cases.get_case(case_id)
                assert case is not None
                found = re.search(r"compound-\d+-\d+-\d+", case.report.model_dump_json())
                self.ledger.case_markers[case_id] = found.group(0) if found else ""

    def _case_for_receipt(self, digits: str) -> str | None:
        for lookup in self._keyring().receipt_lookups(digits):
            rows = self.rows("SELECT case_id FROM receipts WHERE lookup = ?", (lookup,))
            if rows:
                return str(rows[0][0])
        return None

    async def check(self, walks: list[Walk], claims: list[Claim], *, final: bool = False) -> None:
        """Every invariant, now; `final` adds those that hold only once everything was delivered."""
        self.ledger.checks += 1
        case_ids = [str(r[0]) for r in self.rows("SELECT id FROM cases ORDER BY created_at")]
        lost = set(self.ledger.case_markers) - set(case_ids)
        if lost:
            raise InvariantBroken(f"committed cases lost after a restart: {sorted(lost)}")
        await self._read_new_cases(case_ids)
        by_marker: dict[str, list[str]] = {}
        for case_id, marker in self.ledger.case_markers.items():
            if not marker:
                raise InvariantBroken(f"case {case_id} holds no walk's marker (its typed answer was lost)")
            by_marker.setdefault(marker, []).append(case_id)
        duplicated = {m: c for m, c in by_marker.items() if len(c) > 1}
        if duplicated:
            raise InvariantBroken(f"a report was committed more than once: {duplicated}")
        known = {w.marker for w in walks}
        if set(by_marker) - known:
            raise InvariantBroken(f"cases of no walk: {sorted(set(by_marker) - known)}")
        for w in walks:
            await self._check_walk(w, by_marker)
        await self._check_alerts(case_ids, final=final)
        self._check_claims(claims)

    async def _check_walk(self, walk: Walk, by_marker: dict[str, list[str]]) -> None:
        """A receipt or "already received" is shown only for a committed case of this very walk."""
        if walk.receipt is not None:
            case_id = self.ledger.receipts.get(walk.receipt) or self._case_for_receipt(walk.receipt)
            if case_id is None:
                raise InvariantBroken(f"{walk.marker}: a receipt was shown for no committed case")
            self.ledger.receipts[walk.receipt] = case_id
            if self.ledger.case_markers.get(case_id) != walk.marker:
                raise InvariantBroken(f"{walk.marker}: its receipt opens another report's case")
        if walk.already and walk.marker not in by_marker:
            raise InvariantBroken(f"{walk.marker}: told 'already received' with no committed case")

    async def _check_alerts(self, case_ids: list[str], *, final: bool) -> None:
        """One topic and one card per case, unless a send's outcome was unknowable: then the extra ones
        come with the flag (on the card) and the case is marked in the database."""
        state = await self.sb.state()
        (chat,) = [c for c in state["chats"] if c["id"] == self.group_id]
        topics: dict[str, int] = {}
        for topic in chat["topics"]:
            for case_id in case_ids:
                if case_id in str(topic["name"]):
                    topics[case_id] = topics.get(case_id, 0) + 1
        messages = [m for m in await self.sb.messages(self.group_id) if m["from"]["is_bot"] and "text" in m]
        cards: dict[str, list[JSON]] = {}
        for m in messages:
            first = str(m["text"]).split("\n", 1)[0]
            for case_id in case_ids:
                if f"Case {case_id}" in first:
                    cards.setdefault(case_id, []).append(m)
        flagged_in_db = {
            str(k).rsplit(":", 1)[1]
            for (k,) in self.rows(
                "SELECT key FROM bot_state WHERE key LIKE ?", (f"{POSSIBLE_DUPLICATE_KEY}:%",)
            )
        }
        sent = {
            str(r[0])
            for r in self.rows("SELECT case_id FROM outbox WHERE kind = 'new_case' AND sent_at IS NOT NULL")
        }
        duplicates = 0
        for case_id in case_ids:
            shown = cards.get(case_id, [])
            if case_id in sent and not shown:
                raise InvariantBroken(f"case {case_id}: its alert is marked sent but no card is in the group")
            if topics.get(case_id, 0) > 1 or len(shown) > 1:
                duplicates += 1
                # The flag is recorded before the second send; the card shows it once there is one.
                marked = case_id in flagged_in_db
                shows = not shown or any(FLAG in str(m["text"]) for m in shown)
                if not (marked and shows):
                    raise InvariantBroken(
                        f"case {case_id}: {topics.get(case_id, 0)} topics and {len(shown)} cards; flag "
                        f"recorded: {marked}, shown on a card: {shows}"
                    )
            if final and (not shown or not topics.get(case_id)):
                raise InvariantBroken(f"case {case_id}: never alerted")
        self.ledger.flagged_duplicates = duplicates
        if final:
            waiting = self.rows("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL")
            dead = self.rows("SELECT case_id, last_error FROM outbox WHERE dead_at IS NOT NULL")
            if waiting[0][0] or dead:
                raise InvariantBroken(f"alerts not delivered: {waiting[0][0]} waiting, dead letters {dead}")
            in_flight = self.rows(
                "SELECT key, value FROM bot_state WHERE key LIKE ? AND value != ''", (f"{IN_FLIGHT_KEY}:%",)
            )
            if in_flight:
                raise InvariantBroken(f"sends still recorded in flight after delivery: {in_flight}")

    def _check_claims(self, claims: list[Claim]) -> None:
        """A claim acknowledged with "Done." was committed: the case is the coordinator's."""
        for claim in claims:
            if claim.answer != DONE:
                continue
            rows = self.rows("SELECT assignee_id FROM cases WHERE id = ?", (claim.case_id,))
            if not rows or rows[0][0] != self.coordinator_id:
                raise InvariantBroken(f"case {claim.case_id}: the claim was acknowledged but is not recorded")


async def settle(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """Poll `check` every 0.1 s until it holds or `timeout` passes; tell whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()
