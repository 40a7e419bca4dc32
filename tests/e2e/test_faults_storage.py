"""Local storage faults under a running bot: the disk full, the database locked by another writer, the
database read-only. The reporter gets a calm translated "try again", nothing is half-written, the same
reporter completes the report once the fault clears, the alert dispatcher and the coordinators' commands
wait the fault out, and the bot keeps running throughout.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess  # nosec B404: mount and umount a tmpfs, with fixed arguments
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.app import get_database
from bot.crypto import Keyring
from handlers.coordinators.delivery import ALERTS_KEY, AlertRunner
from handlers.intake.draft import Step
from sandbox.server import SandboxServer
from storage.conversations import ConversationStore
from storage.db import BUSY_TIMEOUT_MS
from tests.e2e.conftest import Harness, handled_everything_sent, running_bot
from tests.e2e.intake_flow import (
    CODE,
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    new_reporter,
    step_of,
    today_utc,
)
from tests.e2e.reporter import Reporter

NOT_SAVED = "Sorry, the report could not be saved. Please try again in a moment."
# What a coordinators' command answers when its change cannot be saved.
NOT_NOW = "This change is not possible now."
# Words of the report that must never reach a log line.
PLAN = Plan(
    victim=False,
    place_text="Qzorp compound, the building with the red gate",
    details=("Qzorp guards took the passports last night.",),
)
SECRETS = ("Qzorp", "red gate", "passports last night")
TMPFS_SIZE = "16m"
MAX_FILLER_WRITES = 16 * 1024 * 1024 // 512 + 1


# --- the faults --------------------------------------------------------------------------------------


class Disk:
    """The database's own small file system (a tmpfs), which a filler file fills to the last byte.

    Mounting needs root, which CI has; elsewhere the tests that need it are skipped. There is no fallback
    on purpose: SQLite's `max_page_count` caps the number of pages, but a small row still fits in the free
    space of a page the database already has, so most writes would succeed (tried: the report was saved)
    and the test would not be about a full disk. A loop file needs mount rights just the same.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.mounted = _mount_tmpfs(folder)
        self.filler = folder / "filler"

    async def fill(self, database: Path) -> None:
        """Leave no free byte. The WAL is truncated first: otherwise a commit could reuse WAL space that a
        checkpoint freed, and succeed on a full disk, which is right but not the fault under test.

        The checkpoint runs on a connection of its own. On the bot's connection it fails ("database table
        is locked") whenever one of the bot's transactions is open there, as one may be at any moment (the
        bot handles updates at once); its own connection waits for the bot's writer, within the busy
        timeout, and says whether it could truncate the WAL."""
        async with aiosqlite.connect(database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000) as other:
            checkpoint = list(await other.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
        assert checkpoint == [(0, 0, 0)], f"the WAL was not truncated (busy, frames, moved): {checkpoint}"
        zeros = bytes(65536)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                for _ in range(MAX_FILLER_WRITES):  # ends at ENOSPC: the tmpfs is small
                    try:
                        os.write(fd, zeros[:size])
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def clear(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.folder)], check=False)  # nosec


def _mount_tmpfs(folder: Path) -> bool:
    try:
        done = subprocess.run(  # nosec B603
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


@contextlib.asynccontextmanager
async def write_lock(database: Path) -> AsyncIterator[None]:
    """Another connection holds the write lock (as a backup tool or a second process would) for longer
    than Beacon's busy timeout.

    The lock is taken off the event loop (aiosqlite's thread). The bot may be in the middle of a write
    transaction just then (it handles updates at once), and that transaction needs the event loop to go on
    to its commit: a blocking connection here would stop the loop while it waits for the lock, until
    "database is locked". This one waits for the bot's transaction, within the busy timeout."""
    async with aiosqlite.connect(database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000) as other:
        await other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            await other.rollback()


@contextlib.asynccontextmanager
async def read_only(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """The bot's database turns read-only under it. SQLite's `query_only` answers every write with
    SQLITE_READONLY ("attempt to write a readonly database"), the error a read-only file or file system
    gives: a chmod restricts nothing for root, who runs CI, and Linux refuses to remount a file system
    read-only while the bot holds the database open for writing."""
    await conn.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        await conn.execute("PRAGMA query_only = OFF")


# --- the harness: the database on its own small disk -------------------------------------------------


@pytest.fixture
async def disk_harness(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[tuple[Harness, Disk]]:
    """Like `harness`, with the database on a tmpfs of its own."""
    disk = Disk(tmp_path / "disk")
    if not disk.mounted:
        pytest.skip("a tmpfs cannot be mounted here (root is needed); CI runs as root")
    try:
        async with running_bot(sandbox, disk.folder / "beacon.db") as h:
            yield h, disk
    finally:
        disk.unmount()


# --- what must hold after every fault ----------------------------------------------------------------


async def assert_whole(h: Harness) -> None:
    """The database passes integrity_check and every case has its outbox row and its receipt."""
    conn = get_database(h.app)
    assert list(await conn.execute_fetchall("PRAGMA integrity_check")) == [("ok",)]
    orphans = await conn.execute_fetchall(
        "SELECT id FROM cases c WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.id) "
        "OR NOT EXISTS (SELECT 1 FROM receipts r WHERE r.case_id = c.id)"
    )
    assert list(orphans) == []


def assert_quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    """No log line, traceback included, holds a word of the report."""
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in the log: {record.name}"


async def stored_user_data(h: Harness) -> dict[int, dict[str, Any]]:
    """The conversations as written in the database (not as the running bot holds them)."""
    keyring = Keyring(h.settings.secret_key_bytes())
    return await ConversationStore(get_database(h.app), keyring).load_user_data()


def stored_at(h: Harness, r: Reporter, step: Step) -> Callable[[], Awaitable[bool]]:
    """A check: the reporter's conversation as written in the database is at `step`."""

    async def check() -> bool:
        return (await stored_user_data(h)).get(r.user_id, {}).get("step") == step.value

    return check


async def note(h: Harness, case_id: str) -> str:
    """The coordinator adds a note to the case in the group; return the bot's answer."""
    sent = await h.sb.send_text(h.coordinator_id, f"/note {case_id} called the embassy", chat_id=h.group_id)
    answer = await h.sb.wait_for_message(
        h.group_id, after_message_id=sent["message"]["message_id"], timeout=20
    )
    return str(answer["text"])


async def press_send(r: Reporter, expect: str | None = None) -> str:
    """Press "Send the report" on the review; return the text of the bot's answer (or wait for `expect`)."""
    review = await r.question(Step.REVIEW.value)
    mark = await r.last_id()
    await r.sb.press_button(r.user_id, review["message_id"], data="s:review:submit", bot_id=r.bot_id)

    def answer(m: dict[str, object]) -> bool:
        text = str(m.get("text", ""))
        return text == expect if expect else bool(CODE.search(text)) or text == NOT_SAVED

    return str((await r.reply_after(mark, answer, timeout=40))["text"])


async def the_fault_then_a_retry_goes_through(h: Harness, r: Reporter, walk: Walk) -> None:
    """After a refused submission: the draft is intact, a second press commits exactly one case."""
    await assert_whole(h)
    assert await case_ids(h) == []
    assert await step_of(h, r) == Step.REVIEW.value, "the draft waits at the review"
    receipt_text = await press_send(r)
    assert CODE.search(receipt_text), receipt_text
    case = await case_by_receipt(h, receipt_text)
    assert await case_ids(h) == [case.case_id]
    assert case.report == walk.plan.report("en", today_utc())
    await assert_whole(h)
    assert h.app.running


# --- the reporter's side -----------------------------------------------------------------------------


async def test_a_full_disk_refuses_the_report_calmly_and_a_retry_after_it_is_freed_saves_it_once(
    disk_harness: tuple[Harness, Disk], caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills up before "Send": the reporter is told calmly to try again, nothing is written, the
    answers wait at the review; once space is freed the same press saves the report, once."""
    caplog.set_level(logging.INFO)
    h, disk = disk_harness
    r = await new_reporter(h)
    walk = Walk(r, PLAN)
    await walk.begin()
    await walk.to_review()

    await disk.fill(h.settings.database)
    try:
        assert await press_send(r) == NOT_SAVED
        assert h.app.running
    finally:
        disk.clear()
    await the_fault_then_a_retry_goes_through(h, r, walk)
    assert_quiet_logs(caplog)


async def test_a_database_locked_by_another_writer_refuses_calmly_then_saves_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the write lock past the busy timeout: "try again", nothing half-written;
    released, the same reporter's press saves the report once."""
    caplog.set_level(logging.INFO)
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, PLAN)
    await walk.begin()
    await walk.to_review()

    async with write_lock(h.settings.database):
        assert await press_send(r) == NOT_SAVED
        assert h.app.running
    await the_fault_then_a_retry_goes_through(h, r, walk)
    assert_quiet_logs(caplog)


async def test_a_read_only_database_refuses_calmly_then_saves_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The database turns read-only: "try again", nothing written; writable again, the report is saved
    once, with every answer given before and during the fault."""
    caplog.set_level(logging.INFO)
    h = harness
    r = await new_reporter(h)
    walk = Walk(r, PLAN)
    await walk.begin()
    await walk.until(Step.CONDITIONS)

    await h.sb.wait_until(stored_at(h, r, Step.CONDITIONS), timeout=10)  # written after it is shown
    async with read_only(get_database(h.app)):
        # Answers given meanwhile are kept in memory and written once the database takes writes again.
        await walk.until(Step.REVIEW, start=Step.CONDITIONS)
        assert await press_send(r) == NOT_SAVED
        # The press handled through, its write of the answers included (refused too). Its answer does not
        # show that, nor would another chat's: the bot handles updates of different chats at once.
        await handled_everything_sent(h.app)
        assert await stored_at(h, r, Step.CONDITIONS)()

    # Someone else's message is enough for the reporter's unsaved answers to be written.
    other = await new_reporter(h)
    await other.send("/help")
    await h.sb.wait_until(stored_at(h, r, Step.REVIEW), timeout=10)
    await the_fault_then_a_retry_goes_through(h, r, walk)
    assert_quiet_logs(caplog)


# --- the alert dispatcher and the coordinators -------------------------------------------------------


async def test_alerts_and_coordinators_wait_out_a_full_disk_and_deliver_once(
    disk_harness: tuple[Harness, Disk], caplog: pytest.LogCaptureFixture
) -> None:
    """A case committed just before the disk fills: while it is full, no topic is opened that could not be
    recorded (so none is opened twice), a coordinator's /note is answered "not possible now"; once space is
    freed the alert is delivered exactly once and the note can be added."""
    caplog.set_level(logging.INFO)
    h, disk = disk_harness
    runner = h.app.bot_data[ALERTS_KEY]
    assert isinstance(runner, AlertRunner)
    conn = get_database(h.app)
    async with runner.lock:
        r = await new_reporter(h)
        receipt = await Walk(r, PLAN).report()
        case_id = (await case_by_receipt(h, receipt["text"])).case_id
        await disk.fill(h.settings.database)
    try:
        assert await note(h, case_id) == NOT_NOW

        async def refused_twice() -> bool:
            """Two delivery rounds (one every 2 s) met the full disk and failed before sending."""
            failed = [rec for rec in caplog.records if "deliver_alerts" in rec.getMessage()]
            return len(failed) >= 2

        await h.sb.wait_until(refused_twice, timeout=20)
        ticks = await h.sb.calls("createForumTopic")
        assert [c for c in ticks if c["ok"]] == [], "no topic that could not be recorded"
        assert h.app.running
    finally:
        disk.clear()

    async def delivered() -> bool:
        rows = await conn.execute_fetchall("SELECT sent_at FROM outbox WHERE case_id = ?", (case_id,))
        return [row[0] is not None for row in rows] == [True]

    await h.sb.wait_until(delivered, timeout=30)
    state = await h.sb.state()
    (group,) = [c for c in state["chats"] if c["id"] == h.group_id]
    assert [case_id in t["name"] for t in group["topics"]] == [True], "one topic"
    cards = [m for m in await h.sb.messages(h.group_id) if f"Case {case_id}" in str(m.get("text", ""))]
    assert len(cards) == 1, "one card"
    sent = await h.sb.send_text(h.coordinator_id, f"/note {case_id} called the embassy", chat_id=h.group_id)
    answer = await h.sb.wait_for_message(
        h.group_id, after_message_id=sent["message"]["message_id"], timeout=20
    )
    assert answer["text"] == "Note added."
    await assert_whole(h)
    assert_quiet_logs(caplog)
