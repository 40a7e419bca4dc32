"""Maintenance: the retention purge erases every trace of old closed cases and keeps their statistics; online
backups are checked copies written atomically with mode 0600; the health figures are read without writing."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.crypto import Keyring
from bot.domain.models import CaseStatus, Condition
from bot.domain.records import Media, MediaKind
from bot.domain.workflow import ClosingReason
from storage.audit import audit_entries, verify_audit
from storage.cases import CaseStore
from storage.coordination import CoordinationStore
from storage.db import DatabaseOpenError, PragmaError, open_database
from storage.maintenance import (
    ERASED_CASE_COLUMNS,
    ERASED_TABLES,
    KEPT_TABLES,
    RETENTION_PURGE,
    BackupError,
    MaintenanceError,
    MaintenanceStore,
    backup_database,
    migration_status,
    open_read_only,
)
from storage.migrations import MIGRATIONS
from storage.relay import RelayStore
from storage.workflow import WorkflowStore
from tests.storage.factories import NOW, Clock, make_case, rich_report, row_counts

COORDINATOR = 222
OLD = NOW - timedelta(days=120)  # closed long ago: past a 90-day retention
RECENT = NOW - timedelta(days=10)  # closed lately: kept

# The columns of `cases` a purge keeps: codes, ranges, dates and the area. A new column must be put here or
# in ERASED_CASE_COLUMNS (test_every_column_of_cases_is_either_kept_or_erased).
KEPT_CASE_COLUMNS = {
    "id",
    "created_at",
    "updated_at",
    "status",
    "priority",
    "reasons",
    "score",
    "corroborating_cases",
    "rules_version",
    "reporter_type",
    "immediate_danger",
    "fast_track",
    "place_unknown",
    "country",
    "area_id",
    "passport",
    "phone",
    "people",
    "nationalities",
    "contact",
    "language",
    "victim_age_band",
    "victim_sex",
    "victim_nationality",
    "quarantined",
    "withdrawn_at",
    "assignee_id",
    "closing_reason",
    "priority_overridden",
}


def media(text: str) -> Media:
    return Media(kind=MediaKind.PHOTO, content=f"jpeg {text}".encode(), mime_type="image/jpeg")


async def file_case(
    conn: aiosqlite.Connection,
    keyring: Keyring,
    clock: Clock,
    *,
    marker: str,
    user_id: int,
    at: datetime,
    close: bool,
) -> tuple[str, str]:
    """File a report at ``at`` through the real stores, with the marker in its free text, an addition, a
    photo, a note and a held team message; close it then if ``close``. Return (case id, receipt code)."""
    clock.now = at
    cases = CaseStore(conn, keyring, clock=clock)
    workflow = WorkflowStore(conn, keyring, clock=clock)
    new, receipt = make_case(
        keyring,
        report=rich_report(marker),
        user_id=user_id,
        chat_id=user_id,
        created_at=clock.now,
        media=(media(f"{marker}-photo"),),
    )
    await cases.create_case(new)
    await cases.add_information(new.case_id, f"{marker}-addition", [media(f"{marker}-voice")], update_id=None)
    await workflow.add_note(new.case_id, f"{marker}-note", COORDINATOR)
    await RelayStore(conn, keyring, clock=clock).hold(
        new.case_id, f"{marker}-held", COORDINATOR, media=media(f"{marker}-held-photo")
    )
    if close:
        await workflow.set_status(new.case_id, CaseStatus.CLOSED, COORDINATOR, ClosingReason.RESCUED)
    clock.now = NOW
    return new.case_id, receipt


async def traces(conn: aiosqlite.Connection, case_id: str) -> dict[str, bytes]:
    """Every stored value tied to the case that a purge must erase, as the bytes found on disk: each
    ciphertext, the reporter's pseudonym, the receipt's lookup and hash."""
    found: dict[str, bytes] = {}
    queries = {
        "case_secrets": "SELECT field, ciphertext FROM case_secrets WHERE case_id = ?",
        "case_media": "SELECT id, ciphertext FROM case_media WHERE case_id = ?",
        "case_additions": "SELECT id, ciphertext FROM case_additions WHERE case_id = ?",
        "case_notes": "SELECT id, ciphertext FROM case_notes WHERE case_id = ?",
        "reporter_messages": "SELECT id, ciphertext FROM reporter_messages WHERE case_id = ?",
        "reporter_messages.media": "SELECT id, media FROM reporter_messages WHERE case_id = ?",
        "reporter_links": "SELECT 'pseudonym', pseudonym FROM reporter_links WHERE case_id = ?",
        "receipts.lookup": "SELECT 'lookup', lookup FROM receipts WHERE case_id = ?",
        "receipts.hash": "SELECT 'hash', hash FROM receipts WHERE case_id = ?",
    }
    for table, sql in queries.items():
        for key, value in await conn.execute_fetchall(sql, (case_id,)):
            found[f"{table}:{key}"] = value if isinstance(value, bytes) else str(value).encode()
    return found


def on_disk(db_path: Path, needles: dict[str, bytes]) -> list[str]:
    """Return 'file: name' for every needle found in the database file or its WAL."""
    hits = []
    for suffix in ("", "-wal"):
        path = db_path.with_name(db_path.name + suffix)
        raw = path.read_bytes() if path.exists() else b""
        hits += [f"{path.name}: {name}" for name, needle in needles.items() if needle in raw]
    return hits


def markers(marker: str) -> dict[str, bytes]:
    return {f"{marker} (UTF-8)": marker.encode(), f"{marker} (UTF-16)": marker.encode("utf-16-le")}


# --- the purge -------------------------------------------------------------------------------------------


async def test_purge_erases_every_trace_of_an_old_closed_case_and_keeps_the_others(
    conn, keyring, clock, tmp_path
):
    """After the purge and its checkpoint, neither the database file nor the WAL holds any ciphertext,
    pseudonym or receipt hash of the old closed case (nor its marker); the open and the recently closed
    cases keep every detail; the purged case keeps its codes and dates."""
    db_path = tmp_path / "beacon.db"
    old_id, old_receipt = await file_case(
        conn, keyring, clock, marker="OLDQZX1", user_id=7_000_000_001, at=OLD, close=True
    )
    open_id, _ = await file_case(
        conn, keyring, clock, marker="OPENQZX2", user_id=7_000_000_002, at=OLD, close=False
    )
    recent_id, _ = await file_case(
        conn, keyring, clock, marker="RECQZX3", user_id=7_000_000_003, at=RECENT, close=True
    )
    survivors = [(open_id, "OPENQZX2", 7_000_000_002), (recent_id, "RECQZX3", 7_000_000_003)]
    erased = await traces(conn, old_id)
    assert {name.split(":")[0] for name in erased} == {
        "case_secrets",
        "case_media",
        "case_additions",
        "case_notes",
        "reporter_messages",
        "reporter_messages.media",
        "reporter_links",
        "receipts.lookup",
        "receipts.hash",
    }
    kept = {**await traces(conn, open_id), **await traces(conn, recent_id)}
    maintenance = MaintenanceStore(conn, clock=clock)
    # The scan sees what it looks for: before the purge every trace is on disk (here, after a checkpoint).
    assert await maintenance.checkpoint()
    assert {hit.split(": ", 1)[1] for hit in on_disk(db_path, erased)} == set(erased)

    result = await maintenance.purge_closed(90)

    assert (result.cases, result.dry_run, result.checkpointed) == (1, False, True)
    assert result.cutoff == NOW - timedelta(days=90)
    assert db_path.with_name("beacon.db-wal").stat().st_size == 0
    assert on_disk(db_path, erased) == []
    assert on_disk(db_path, markers("OLDQZX1")) == []
    assert {hit.split(": ", 1)[1] for hit in on_disk(db_path, kept)} == set(kept), "the others' data stays"
    assert await traces(conn, old_id) == {}

    cases = CaseStore(conn, keyring, clock=clock)
    purged = await cases.get_case(old_id)
    assert purged is not None
    assert (purged.status, purged.priority, purged.created_at) == (CaseStatus.CLOSED, 1, OLD)
    assert purged.report.place.area_id == "kh-preah-sihanouk"
    assert purged.report.place.country == "KH"
    assert Condition.LOCKED_IN in purged.report.conditions
    assert purged.closing_reason == ClosingReason.RESCUED.value
    assert purged.report.details is None
    assert purged.report.place.details is None
    assert purged.report.place.latitude is None
    assert purged.report.victim.name is None
    assert purged.additions == ()
    assert purged.media_count == 0
    assert purged.contact_chat_id is None
    approx = list(await conn.execute_fetchall(
        "SELECT approx_latitude, approx_longitude FROM cases WHERE id = ?", (old_id,)
    ))  # fmt: skip
    assert approx == [(None, None)]
    assert await cases.case_by_receipt(old_receipt) is None
    assert await cases.cases_of(keyring.pseudonym(7_000_000_001)) == []

    for case_id, marker, user_id in survivors:
        case = await cases.get_case(case_id)
        assert case is not None
        assert case.report.details is not None
        assert marker in case.report.details
        assert case.additions == (f"{marker}-addition",)
        assert case.media_count == 2
        assert (await WorkflowStore(conn, keyring).notes(case_id))[0][2] == f"{marker}-note"
        assert len(await RelayStore(conn, keyring).waiting(case_id)) == 1
        assert await cases.cases_of(keyring.pseudonym(user_id)) == [case_id]


async def test_purge_writes_one_audit_entry_with_the_count_and_keeps_the_chain_intact(conn, keyring, clock):
    """Each run appends `retention_purge` (no actor, no case) with the count and the retention; a second run
    finds nothing left to erase."""
    for user_id in (7_000_000_011, 7_000_000_012):
        await file_case(conn, keyring, clock, marker="AUDQZX", user_id=user_id, at=OLD, close=True)
    maintenance = MaintenanceStore(conn, clock=clock)

    assert (await maintenance.purge_closed(90)).cases == 2
    assert (await maintenance.purge_closed(90)).cases == 0

    latest = await audit_entries(conn, limit=2)
    assert [(e.action, e.actor_id, e.case_id, dict(e.details)) for e in latest] == [
        (RETENTION_PURGE, None, None, {"cases": 0, "days": 90}),
        (RETENTION_PURGE, None, None, {"cases": 2, "days": 90}),
    ]
    assert latest[0].at == NOW
    assert (await verify_audit(conn)).intact


async def test_a_dry_run_counts_and_writes_nothing(conn, keyring, clock):
    """`dry_run` gives the count the purge would erase and leaves every table as it was."""
    await file_case(conn, keyring, clock, marker="DRYQZX", user_id=7_000_000_021, at=OLD, close=True)
    before = await row_counts(conn)

    result = await MaintenanceStore(conn, clock=clock).purge_closed(90, dry_run=True)

    assert (result.cases, result.dry_run, result.checkpointed) == (1, True, False)
    assert await row_counts(conn) == before


async def test_retention_counts_from_the_last_change_so_a_case_touched_lately_is_kept(conn, keyring, clock):
    """A case closed long ago but given a note last week is kept until the note is old too; a shorter
    retention purges it."""
    case_id, _ = await file_case(
        conn, keyring, clock, marker="TCHQZX", user_id=7_000_000_031, at=OLD, close=True
    )
    clock.now = NOW - timedelta(days=7)
    await WorkflowStore(conn, keyring, clock=clock).add_note(case_id, "seen again", COORDINATOR)
    clock.now = NOW
    maintenance = MaintenanceStore(conn, clock=clock)

    assert (await maintenance.purge_closed(90)).cases == 0
    assert (await maintenance.purge_closed(5)).cases == 1


async def test_rate_events_that_would_relink_a_purged_reporter_are_deleted(conn, keyring, clock):
    """The purged case's rate event (pseudonym and exact time) goes, as do all events older than the cutoff;
    a recent reporter's stays."""
    await file_case(conn, keyring, clock, marker="RATQZX", user_id=7_000_000_041, at=OLD, close=True)
    await file_case(conn, keyring, clock, marker="RATQZX", user_id=7_000_000_042, at=RECENT, close=False)

    await MaintenanceStore(conn, clock=clock).purge_closed(90)

    rows = await conn.execute_fetchall("SELECT pseudonym FROM rate_events")
    assert [row[0] for row in rows] == [keyring.pseudonym(7_000_000_042)]


async def test_purge_refuses_a_connection_without_secure_delete(conn, keyring, clock):
    """Erased pages must be zeroed: with secure_delete off, nothing is purged."""
    await file_case(conn, keyring, clock, marker="SDQZX", user_id=7_000_000_051, at=OLD, close=True)
    await conn.execute("PRAGMA secure_delete = OFF")
    before = await row_counts(conn)

    with pytest.raises(MaintenanceError, match="secure_delete"):
        await MaintenanceStore(conn, clock=clock).purge_closed(90)

    assert await row_counts(conn) == before


@pytest.mark.parametrize("days", [0, -1, 36_501])
async def test_a_retention_out_of_range_is_refused(conn, clock, days):
    with pytest.raises(ValueError, match="retention"):
        await MaintenanceStore(conn, clock=clock).purge_closed(days)


async def test_every_table_holding_a_case_is_either_erased_or_kept_by_the_purge(conn):
    """A future table with a case_id must be classified (erased or kept) before the purge can be trusted."""
    holding = set()
    tables = await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    for (table,) in tables:
        columns = {row[1] for row in await conn.execute_fetchall(f'PRAGMA table_info("{table}")')}
        references = {row[2] for row in await conn.execute_fetchall(f'PRAGMA foreign_key_list("{table}")')}
        if "case_id" in columns or "cases" in references:
            holding.add(table)
    assert not set(ERASED_TABLES) & set(KEPT_TABLES)
    assert holding == set(ERASED_TABLES) | set(KEPT_TABLES)


async def test_every_column_of_cases_is_either_kept_or_erased(conn):
    """A future column of `cases` must be classified before the purge can be trusted."""
    columns = {row[1] for row in await conn.execute_fetchall("PRAGMA table_info(cases)")}
    assert not KEPT_CASE_COLUMNS & set(ERASED_CASE_COLUMNS)
    assert columns == KEPT_CASE_COLUMNS | set(ERASED_CASE_COLUMNS)


# --- health figures -----------------------------------------------------------------------------------


async def test_outbox_backlog_and_dead_letters_are_counted(conn, keyring, clock):
    """Unsent alerts are counted with the oldest's time; dead letters are told apart by open and closed
    cases."""
    maintenance = MaintenanceStore(conn, clock=clock)
    assert (await maintenance.outbox_backlog()).count == 0
    assert (await maintenance.outbox_backlog()).oldest is None
    store = CaseStore(conn, keyring, clock=clock)
    first, _ = make_case(keyring, created_at=OLD)
    second, _ = make_case(keyring, created_at=NOW)
    clock.now = OLD
    await store.create_case(first)
    clock.now = NOW
    await store.create_case(second)

    backlog = await maintenance.outbox_backlog()
    assert (backlog.count, backlog.oldest) == (2, OLD)

    coordination = CoordinationStore(conn, store, clock=clock)
    dead = [item.id for item in await store.pending_outbox(10) if item.case_id == first.case_id]
    await coordination.dead_letter(dead[0], "Forbidden: bot was kicked")
    assert (await maintenance.outbox_backlog()).count == 1
    letters = await maintenance.dead_letters()
    assert (letters.total, letters.open_cases) == (1, 1)

    await WorkflowStore(conn, keyring, clock=clock).set_status(
        first.case_id, CaseStatus.CLOSED, COORDINATOR, ClosingReason.UNREACHABLE
    )
    letters = await maintenance.dead_letters()
    assert (letters.total, letters.open_cases) == (1, 0)


async def test_migration_status_of_an_unmigrated_database_lists_all_pending_and_writes_nothing(tmp_path):
    """No ledger means nothing applied; the ledger is not created by asking."""
    path = tmp_path / "empty.db"
    await (await open_database(path)).close()  # a WAL database without tables
    conn = await open_read_only(path)
    try:
        status = await migration_status(conn)
    finally:
        await conn.close()
    assert status.pending == tuple(m.name for m in MIGRATIONS)
    assert (status.applied, status.unknown, status.current) == ((), (), False)
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)


async def test_migration_status_names_migrations_this_version_does_not_know(conn):
    status = await migration_status(conn, known=[m.name for m in MIGRATIONS[:-1]])
    assert status.unknown == (MIGRATIONS[-1].name,)
    assert not status.current
    assert (await migration_status(conn)).current


async def test_a_read_only_connection_checks_the_pragmas_and_refuses_writes(conn, tmp_path):
    """open_read_only runs with Beacon's pragmas; SQLite refuses any write through it."""
    ro = await open_read_only(tmp_path / "beacon.db")
    try:
        rows = list(await ro.execute_fetchall("PRAGMA secure_delete"))
        assert rows[0][0] == 1
        with pytest.raises(aiosqlite.OperationalError, match="readonly"):
            await ro.execute("DELETE FROM cases")
    finally:
        await ro.close()


async def test_a_read_only_open_creates_no_missing_database(tmp_path):
    with pytest.raises(DatabaseOpenError, match="no database at"):
        await open_read_only(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


async def test_a_read_only_open_of_a_database_not_in_wal_mode_is_a_pragma_error(tmp_path):
    """A file Beacon did not set up (rollback journal) fails the pragma check, and is not converted."""
    path = tmp_path / "rollback.db"
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE t (x)")
        raw.commit()
    with pytest.raises(PragmaError, match="journal_mode"):
        await open_read_only(path)
    assert path.read_bytes()[18:20] == b"\x01\x01"


# --- backups ---------------------------------------------------------------------------------------------


async def test_a_backup_is_a_checked_single_file_with_mode_0600_holding_the_same_ciphertext(
    conn, keyring, clock, tmp_path
):
    """The copy is complete, in rollback-journal mode (no -wal beside it), owner-only even with umask 0,
    and holds the same ciphertext as the database; nothing else is left in the folder."""
    await file_case(conn, keyring, clock, marker="BAKQZX", user_id=7_000_000_061, at=NOW, close=False)
    target = tmp_path / "backups" / "beacon-1.db"
    target.parent.mkdir()
    previous = os.umask(0)
    try:
        result = await backup_database(tmp_path / "beacon.db", target)
    finally:
        os.umask(previous)

    assert (result.path, result.cases, result.size) == (target, 1, target.stat().st_size)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["beacon-1.db"]
    assert target.read_bytes()[18:20] == b"\x01\x01", "rollback journal, not WAL"
    original = {
        row[0]: row[1] for row in await conn.execute_fetchall("SELECT field, ciphertext FROM case_secrets")
    }
    with closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert dict(copy.execute("SELECT field, ciphertext FROM case_secrets").fetchall()) == original
        assert copy.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)
    assert markers("BAKQZX")["BAKQZX (UTF-8)"] not in target.read_bytes()


async def test_a_backup_is_consistent_while_another_connection_is_writing(conn, keyring, clock, tmp_path):
    """A write transaction open during the backup neither blocks it nor appears half-done in it."""
    await file_case(conn, keyring, clock, marker="ONLQZX", user_id=7_000_000_071, at=NOW, close=False)
    writer = await open_database(tmp_path / "beacon.db")
    try:
        await writer.execute("BEGIN IMMEDIATE")
        await writer.execute("DELETE FROM case_tags")
        await writer.execute("UPDATE cases SET status = 'acknowledged'")
        result = await backup_database(tmp_path / "beacon.db", tmp_path / "copy.db")
        await writer.rollback()
    finally:
        await writer.close()
    assert result.cases == 1
    with closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        assert copy.execute("SELECT status FROM cases").fetchall() == [("new",)]


async def test_a_backup_never_replaces_an_existing_file_unless_asked(conn, tmp_path):
    """An existing target is refused and left as it was; with overwrite it is replaced whole."""
    target = tmp_path / "copy.db"
    target.write_bytes(b"yesterday's backup")

    with pytest.raises(BackupError, match="exists"):
        await backup_database(tmp_path / "beacon.db", target)
    assert target.read_bytes() == b"yesterday's backup"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    result = await backup_database(tmp_path / "beacon.db", target, overwrite=True)
    assert result.cases == 0
    assert target.read_bytes().startswith(b"SQLite format 3\x00")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("where", ["under a file", "missing folder", "a folder"])
async def test_a_backup_to_a_path_that_cannot_be_written_fails_and_leaves_nothing(conn, tmp_path, where):
    (tmp_path / "plain").write_text("a file, not a folder")
    (tmp_path / "folder").mkdir()
    target = {
        "under a file": tmp_path / "plain" / "copy.db",
        "missing folder": tmp_path / "nowhere" / "copy.db",
        "a folder": tmp_path / "folder",
    }[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))

    with pytest.raises(BackupError):
        await backup_database(tmp_path / "beacon.db", target)

    assert sorted(p.name for p in tmp_path.rglob("*")) == before


async def test_a_backup_of_a_missing_database_is_refused(tmp_path):
    with pytest.raises(DatabaseOpenError, match="no database at"):
        await backup_database(tmp_path / "missing.db", tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()


async def test_a_copy_that_fails_its_integrity_check_is_removed(tmp_path):
    """A source with a broken b-tree (an index whose schema entry was cut out) is copied page for page;
    the copy's integrity check fails, so the command fails and leaves no file."""
    source = tmp_path / "broken.db"
    with closing(sqlite3.connect(source)) as raw:
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("CREATE TABLE t (x TEXT)")
        raw.execute("CREATE INDEX t_x ON t (x)")
        raw.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(500)])
        raw.commit()
        raw.execute("PRAGMA writable_schema = ON")
        raw.execute("DELETE FROM sqlite_master WHERE name = 't_x'")
        raw.commit()
    target = tmp_path / "out" / "copy.db"
    target.parent.mkdir()

    with pytest.raises(BackupError, match="integrity check"):
        await backup_database(source, target)

    assert list(target.parent.iterdir()) == []
