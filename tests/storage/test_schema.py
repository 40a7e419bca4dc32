"""The intake schema (migration 0002): what it stores in clear, and how a case's children go with it."""

from __future__ import annotations

import re

import aiosqlite
import pytest

from storage.db import open_database
from storage.migrations import MIGRATIONS, migrate
from tests.storage.factories import make_case, photo, row_counts

CASE_CHILDREN = (
    "case_conditions",
    "case_secrets",
    "case_media",
    "case_additions",
    "case_links",
    "reporter_links",
    "receipts",
    "outbox",
)


async def columns(conn: aiosqlite.Connection) -> dict[str, list[str]]:
    tables = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    result = {}
    for (table,) in tables:
        result[table] = [row[1] for row in await conn.execute_fetchall(f'PRAGMA table_info("{table}")')]
    return result


async def test_migrating_from_empty_reaches_the_intake_schema_and_a_rerun_is_a_no_op(tmp_path):
    """From an empty file to the latest migration, then nothing more to apply."""
    conn = await open_database(tmp_path / "beacon.db")
    try:
        assert await migrate(conn) == [migration.name for migration in MIGRATIONS]
        assert "0002_intake" in [migration.name for migration in MIGRATIONS]
        assert await migrate(conn) == []
        assert set(CASE_CHILDREN) | {"cases", "rate_events", "conversations", "user_data"} <= set(
            await columns(conn)
        )
        rows = await conn.execute_fetchall("PRAGMA foreign_key_check")
        assert list(rows) == []
    finally:
        await conn.close()


async def test_no_column_can_hold_a_telegram_identity_in_clear(conn):
    """No user id, username, name or chat id column: identities are pseudonyms or ciphertext."""
    forbidden = re.compile(r"user_?id|username|first_name|last_name|chat_id|^name$")
    # A ConversationHandler's name ("intake"), a migration's name, SQLite's own sequence table.
    allowed = {
        ("conversations", "name"),
        ("schema_migrations", "name"),
        ("sqlite_sequence", "name"),
        # The coordinators' group where a ticket lives: a negative group id, never a reporter's chat.
        ("case_tickets", "chat_id"),
        # Staff members' Telegram ids: roles are checked against them on every action. Staff act under
        # their own name in their own group; reporters never get a row here. (The other staff-id columns,
        # cases.assignee_id, case_notes.author_id, staff.granted_by and audit_log.actor_id, do not match
        # the pattern; STAFF_ID_COLUMNS below pins them.)
        ("staff", "user_id"),
    }
    found = [
        (table, column)
        for table, names in (await columns(conn)).items()
        for column in names
        if forbidden.search(column) and (table, column) not in allowed
    ]
    assert found == []


# Every column that holds a Telegram user id in clear, all of them staff ids (never a reporter's).
STAFF_ID_COLUMNS = {
    ("staff", "user_id"),
    ("staff", "granted_by"),
    ("cases", "assignee_id"),
    ("case_notes", "author_id"),
    ("audit_log", "actor_id"),
}


async def test_telegram_ids_in_clear_are_only_in_the_staff_id_columns(conn):
    """Every INTEGER *_id or *_by column is a known staff-id column or a known id of something else."""
    others = {
        ("processed_updates", "update_id"),  # Telegram's update counter, not a person
        ("case_tickets", "chat_id"),  # the coordinators' group
        ("case_tickets", "thread_id"),
        ("case_tickets", "card_message_id"),
    }
    found = set()
    for (table,) in await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in await conn.execute_fetchall(f'PRAGMA table_info("{table}")'):
            if str(row[2]).upper() == "INTEGER" and re.search(r"_id$|_by$", row[1]):
                found.add((table, row[1]))
    assert found - others == STAFF_ID_COLUMNS


async def test_the_worker_index_serves_the_pending_outbox_query(conn):
    """Unsent outbox rows are read by priority then id through the partial index, not a table scan."""
    plan = await conn.execute_fetchall(
        "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL "
        "ORDER BY priority, id LIMIT 10"
    )
    detail = " ".join(str(row[-1]) for row in plan)
    assert "outbox_pending" in detail
    assert "TEMP B-TREE" not in detail


async def test_deleting_a_case_deletes_its_children(conn, store, keyring):
    """ON DELETE CASCADE: a purged case takes its conditions, secrets, media, links and receipt with it."""
    before = await row_counts(conn)
    first, _ = make_case(keyring, case_id="AAAA-AAAA", media=(photo(),))
    second, _ = make_case(keyring, case_id="BBBB-BBBB", linked=("AAAA-AAAA",))
    await store.create_case(first)
    await store.create_case(second)
    await store.add_information("AAAA-AAAA", "more", [], update_id=None)
    await conn.execute("DELETE FROM cases WHERE id = 'AAAA-AAAA'")
    await conn.execute("DELETE FROM cases WHERE id = 'BBBB-BBBB'")
    after = await row_counts(conn)
    for table in CASE_CHILDREN:
        assert after[table] == before[table], table


async def test_foreign_keys_refuse_an_orphan_child(conn):
    """A child row naming no case is refused by the database itself."""
    with pytest.raises(aiosqlite.IntegrityError):
        await conn.execute("INSERT INTO case_conditions VALUES ('NONE-NONE', 'violence')")
