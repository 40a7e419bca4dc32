"""Storage: opening the database with checked pragmas, and applying ordered migrations once each."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat

import aiosqlite
import pytest

import storage.db
from storage.db import DatabaseOpenError, PragmaError, open_database, transaction
from storage.migrations import MIGRATIONS, Migration, MigrationError, _statements, applied_migrations, migrate


@pytest.fixture
async def conn(tmp_path):
    """A fresh database file in tmp_path, closed after the test."""
    connection = await open_database(tmp_path / "beacon.db")
    yield connection
    await connection.close()


async def tables(conn: aiosqlite.Connection) -> set[str]:
    rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


async def test_migrating_an_empty_database_applies_every_migration_in_order(conn):
    """From empty, migrate() applies all migrations in order and records each one."""
    applied = await migrate(conn)
    assert applied == [migration.name for migration in MIGRATIONS]
    assert applied[0] == "0001_initial"
    assert {"schema_migrations", "processed_updates"} <= await tables(conn)
    rows = await conn.execute_fetchall("SELECT name, applied_at FROM schema_migrations ORDER BY name")
    assert [row[0] for row in rows] == applied
    assert all(row[1] for row in rows)


async def test_migrating_again_is_a_no_op(conn):
    """A second run applies nothing and leaves the ledger untouched."""
    await migrate(conn)
    before = await conn.execute_fetchall("SELECT name, applied_at FROM schema_migrations")
    assert await migrate(conn) == []
    assert await conn.execute_fetchall("SELECT name, applied_at FROM schema_migrations") == before


async def test_migrations_survive_reopening_the_file(tmp_path):
    """The recorded migrations persist: a later process finds the schema current."""
    path = tmp_path / "beacon.db"
    first = await open_database(path)
    await migrate(first)
    await first.close()
    second = await open_database(path)
    try:
        assert await migrate(second) == []
        assert await applied_migrations(second) == [migration.name for migration in MIGRATIONS]
    finally:
        await second.close()


async def test_processed_updates_records_each_update_id_once(conn):
    """The dedup table refuses a second row for the same Telegram update id."""
    await migrate(conn)
    await conn.execute("INSERT INTO processed_updates VALUES (?, ?)", (1001, "2026-01-01T00:00:00+00:00"))
    with pytest.raises(sqlite3.IntegrityError):
        await conn.execute("INSERT INTO processed_updates VALUES (?, ?)", (1001, "2026-01-01T00:00:01+00:00"))
    with pytest.raises(sqlite3.IntegrityError):
        await conn.execute("INSERT INTO processed_updates (update_id) VALUES (?)", (1002,))


async def test_failed_migration_is_rolled_back_and_not_recorded(conn):
    """A migration that fails halfway leaves no table behind and is not marked applied."""
    migrations = (
        Migration("0001_good", "CREATE TABLE good (x INTEGER);"),
        Migration("0002_bad", "CREATE TABLE half (x INTEGER); INSERT INTO missing VALUES (1);"),
    )
    with pytest.raises(MigrationError, match="0002_bad"):
        await migrate(conn, migrations)
    assert await applied_migrations(conn) == ["0001_good"]
    assert "good" in await tables(conn)
    assert "half" not in await tables(conn)
    assert not conn.in_transaction


async def test_database_migrated_by_a_newer_version_is_refused(conn):
    """A ledger naming a migration this version lacks means a downgrade: refuse to touch it."""
    await migrate(conn)
    await conn.execute("INSERT INTO schema_migrations VALUES ('9999_future', '2030-01-01T00:00:00+00:00')")
    with pytest.raises(MigrationError, match="9999_future"):
        await migrate(conn)


def test_shipped_migrations_have_unique_ascending_names():
    """Migration names are unique, numbered, and listed in the order they apply."""
    names = [migration.name for migration in MIGRATIONS]
    assert names == sorted(set(names))
    assert all(name[:4].isdigit() and name[4] == "_" for name in names)


async def test_migrations_listed_out_of_order_are_refused(conn):
    """A list whose names are not ascending is a programming error, caught before touching the file."""
    with pytest.raises(MigrationError, match="ascending"):
        await migrate(conn, (Migration("0002_b", "SELECT 1;"), Migration("0001_a", "SELECT 1;")))
    assert await applied_migrations(conn) == []


async def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path):
    """Concurrent migrators serialise on the write lock; every migration is applied exactly once."""
    path = tmp_path / "beacon.db"
    first, second = await open_database(path), await open_database(path)
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        assert sorted(results[0] + results[1]) == [migration.name for migration in MIGRATIONS]
    finally:
        await first.close()
        await second.close()


def test_migration_sql_is_split_into_whole_statements():
    """Semicolons inside strings, comments and trigger bodies do not split a statement."""
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'p;q');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;
    /* trailing; comment */
    """
    statements = list(_statements(sql))
    assert len(statements) == 2
    assert "'p;q'" in statements[0]
    assert statements[1].strip().endswith("END;")


def test_migration_with_an_unfinished_statement_is_refused():
    """A migration whose last statement lacks its end is an error, not silently dropped."""
    with pytest.raises(MigrationError, match="incomplete"):
        list(_statements("CREATE TABLE a (x INTEGER); CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;"))


async def test_open_database_sets_and_checks_the_pragmas(conn):
    """WAL, synchronous=FULL, foreign keys, secure delete and a 5 s busy timeout are in force."""
    expected = {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "secure_delete": 1,
        "busy_timeout": 5000,
    }
    for pragma, value in expected.items():
        rows = await conn.execute_fetchall(f"PRAGMA {pragma}")
        assert next(iter(rows))[0] == value, pragma


async def test_pragma_that_does_not_take_raises_pragma_error(tmp_path, monkeypatch):
    """SQLite silently ignores a pragma it cannot apply; open_database notices and raises."""
    monkeypatch.setattr(storage.db, "_PRAGMAS", (("journal_mode", "NONSENSE", "nonsense"),))
    with pytest.raises(PragmaError, match="journal_mode"):
        await open_database(tmp_path / "beacon.db")


async def test_open_database_creates_missing_parent_folders(tmp_path):
    """The database's folder is created on first open, readable by this user only."""
    path = tmp_path / "data" / "nested" / "beacon.db"
    conn = await open_database(path)
    await conn.close()
    assert path.is_file()
    if os.name == "posix":
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_database_that_cannot_be_created_raises_a_storage_error(tmp_path):
    """A path under a regular file cannot hold a database: a DatabaseOpenError says so."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatabaseOpenError):
        await open_database(blocker / "beacon.db")


async def test_transaction_commits_on_success_and_rolls_back_on_error(conn):
    """Writes in a transaction block are all kept, or all discarded if the block raises."""
    await conn.execute("CREATE TABLE t (x INTEGER)")
    async with transaction(conn):
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.execute("INSERT INTO t VALUES (2)")

    async def insert_then_fail() -> None:
        async with transaction(conn):
            await conn.execute("INSERT INTO t VALUES (3)")
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await insert_then_fail()
    rows = await conn.execute_fetchall("SELECT x FROM t ORDER BY x")
    assert [row[0] for row in rows] == [1, 2]
    assert not conn.in_transaction


async def test_0004_adds_the_workflow_to_a_database_with_cases(conn):
    """A database at 0003 holding a case upgrades to 0004: the case gains empty workflow columns."""
    await migrate(conn, MIGRATIONS[:3])
    await conn.execute(
        "INSERT INTO cases (id, created_at, updated_at, priority, score, rules_version, language) "
        "VALUES ('AAAA-AAAA', '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00', 2, 50, "
        "'v1', 'en')"
    )
    assert await migrate(conn, MIGRATIONS[:4]) == ["0004_workflow"]
    assert MIGRATIONS[3].name == "0004_workflow"
    assert {"staff", "case_notes", "case_tags", "audit_log"} <= await tables(conn)
    rows = await conn.execute_fetchall(
        "SELECT status, assignee_id, closing_reason, priority_overridden FROM cases WHERE id = 'AAAA-AAAA'"
    )
    assert list(rows) == [("new", None, None, 0)]
    triggers = await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log' ORDER BY name"
    )
    assert [row[0] for row in triggers] == ["audit_log_no_delete", "audit_log_no_update"]
    assert list(await conn.execute_fetchall("PRAGMA foreign_key_check")) == []
