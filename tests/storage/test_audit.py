"""The audit trail: hash-chained, append-only, codes and ids only, and a tampered entry is named."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest

from bot.domain.workflow import Action, Role
from storage.audit import (
    GENESIS_HASH,
    AuditUnavailable,
    append_audit,
    audit_entries,
    entry_hash,
    verify_audit,
)
from storage.cases import CASE_CREATED, REPORTER_WITHDREW, AlreadyProcessed
from storage.db import open_database, transaction
from storage.migrations import MIGRATIONS, migrate
from tests.storage.factories import NOW, make_case, tamper_audit

ADMIN = 111
COORDINATOR = 222


async def append(conn, action: str = "view_queue", case_id: str | None = None, **details) -> int:
    async with transaction(conn):
        return await append_audit(
            conn, at=NOW, actor_id=ADMIN, action=action, case_id=case_id, details=details
        )


async def test_an_empty_trail_is_intact(conn):
    """No entries: nothing to break, and the head is the genesis hash."""
    check = await verify_audit(conn)
    assert (check.entries, check.intact, check.head_hash) == (0, True, GENESIS_HASH)


async def test_entries_chain_each_to_the_one_before(conn):
    """The first entry chains to 64 zeros, each later one to its predecessor's hash, and all verify."""
    ids = [await append(conn, case_id="AAAA-AAAA", n=n) for n in range(3)]
    assert ids == [1, 2, 3]
    entries = list(reversed(await audit_entries(conn)))
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert entries[2].hash == entry_hash(
        entry_id=3,
        at="2026-03-01T12:00:00.000000+00:00",
        actor_id=ADMIN,
        action="view_queue",
        case_id="AAAA-AAAA",
        details='{"n":2}',
        prev_hash=entries[1].hash,
    )
    check = await verify_audit(conn)
    assert (check.entries, check.intact, check.head_hash) == (3, True, entries[2].hash)


async def test_details_are_stored_as_canonical_json(conn):
    """Keys sorted, no spaces, whatever order the caller used."""
    async with transaction(conn):
        await append_audit(
            conn, at=NOW, actor_id=None, action="x", case_id=None, details={"b": True, "a": None, "c": "P1"}
        )
    rows = await conn.execute_fetchall("SELECT details FROM audit_log")
    assert list(rows) == [('{"a":null,"b":true,"c":"P1"}',)]


async def test_append_refuses_to_run_outside_a_transaction(conn):
    """Chaining needs the write lock: an entry appended outside a transaction could fork the chain."""
    with pytest.raises(RuntimeError, match="inside transaction"):
        await append_audit(conn, at=NOW, actor_id=None, action="x", case_id=None, details={})


@pytest.mark.parametrize(
    "details",
    [
        {"note": "They beat him with a stick, building B floor 5, please hurry up and send someone"},
        {"Bad Key": 1},
        {"nested": {"a": 1}},  # type: ignore[dict-item]
        {"ratio": 0.5},  # type: ignore[dict-item]
    ],
)
async def test_details_that_are_not_short_codes_are_refused(conn, details):
    """Free text, odd keys, nesting and floats are refused before anything is written."""
    with pytest.raises(ValueError, match="audit detail"):
        await append(conn, **details)
    assert (await verify_audit(conn)).entries == 0


async def test_update_and_delete_are_refused_by_the_triggers(conn):
    """The table is append-only inside the database itself."""
    await append(conn)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await conn.execute("UPDATE audit_log SET action = 'nothing'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await conn.execute("DELETE FROM audit_log")
    assert (await verify_audit(conn)).entries == 1


async def test_an_entry_edited_behind_the_triggers_is_named(conn, tmp_path):
    """Dropping the triggers, editing entry 2's details and restoring them is caught at entry 2."""
    for n in range(4):
        await append(conn, case_id="AAAA-AAAA", n=n)
    tamper_audit(tmp_path / "beacon.db", 2, details='{"n":7}')
    check = await verify_audit(conn)
    assert check.broken_id == 2
    assert check.entries == 2
    assert check.problem is not None
    assert "hash does not match" in check.problem
    assert check.head_hash == (await audit_entries(conn))[-1].hash  # entry 1, the last intact one


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(conn, tmp_path):
    """An intruder who also rewrites the edited entry's hash is caught where the next entry points back."""
    for n in range(3):
        await append(conn, n=n)
    entry = (await audit_entries(conn, limit=3))[1]  # id 2
    forged = entry_hash(
        entry_id=2,
        at="2026-03-01T12:00:00.000000+00:00",
        actor_id=ADMIN,
        action="view_queue",
        case_id=None,
        details='{"n":9}',
        prev_hash=entry.prev_hash,
    )
    with closing(sqlite3.connect(tmp_path / "beacon.db")) as raw:
        raw.execute("DROP TRIGGER audit_log_no_update")
        raw.execute("UPDATE audit_log SET details = '{\"n\":9}', hash = ? WHERE id = 2", (forged,))
        raw.commit()
    check = await verify_audit(conn)
    assert (check.broken_id, check.problem) == (3, "prev_hash does not match the previous entry's hash")


async def test_a_removed_entry_is_named_by_the_one_after_it(conn, tmp_path):
    """Deleting entry 2 behind the triggers breaks the chain at entry 3, which says 2 is missing."""
    for n in range(3):
        await append(conn, n=n)
    tamper_audit(tmp_path / "beacon.db", 2, delete=True)
    check = await verify_audit(conn)
    assert check.broken_id == 3
    assert check.problem is not None
    assert "entry 2 before it missing" in check.problem


async def test_entries_are_listed_newest_first_and_by_case(conn):
    """audit_entries filters by case and returns the latest first, up to the limit."""
    await append(conn, case_id="AAAA-AAAA", n=1)
    await append(conn, case_id="BBBB-BBBB", n=2)
    await append(conn, case_id="AAAA-AAAA", n=3)
    assert [e.details["n"] for e in await audit_entries(conn, "AAAA-AAAA")] == [3, 1]
    assert [e.id for e in await audit_entries(conn, limit=2)] == [3, 2]
    latest = (await audit_entries(conn))[0]
    assert (latest.at, latest.actor_id, latest.action, latest.case_id) == (
        NOW,
        ADMIN,
        "view_queue",
        "AAAA-AAAA",
    )


async def test_a_report_and_its_withdrawal_are_audited_without_actor_or_content(conn, store, keyring, clock):
    """create_case and withdraw add 'case_created' and 'reporter_withdrew' (no actor), and only once."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    clock.now = NOW + timedelta(minutes=5)
    await store.withdraw(new.case_id, update_id=None)
    await store.withdraw(new.case_id, update_id=None)
    entries = list(reversed(await audit_entries(conn, new.case_id)))
    assert [(e.action, e.actor_id) for e in entries] == [(CASE_CREATED, None), (REPORTER_WITHDREW, None)]
    assert entries[0].details == {"priority": 1, "quarantined": False}
    assert entries[1].details == {}
    assert entries[1].at == NOW + timedelta(minutes=5)
    assert (await verify_audit(conn)).intact


async def test_a_refused_report_leaves_no_audit_entry(conn, store, keyring):
    """A duplicate update is rolled back with its audit entry."""
    new, _ = make_case(keyring, update_id=5)
    await store.create_case(new)
    again, _ = make_case(keyring, update_id=5)
    with pytest.raises(AlreadyProcessed):
        await store.create_case(again)
    assert [e.action for e in await audit_entries(conn)] == [CASE_CREATED]


async def test_the_trail_outlives_a_purged_case(conn, store, keyring, staff):
    """Deleting a case (retention) is not blocked by its audit entries, which stay and still verify."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN)
    await conn.execute("DELETE FROM cases WHERE id = ?", (new.case_id,))
    assert [e.action for e in await audit_entries(conn)] == [Action.GRANT.value, CASE_CREATED]
    assert (await verify_audit(conn)).intact


async def test_verify_on_a_database_without_the_trail_says_so(tmp_path):
    """A database migrated only to 0003 has no audit_log: AuditUnavailable, not a crash."""
    conn = await open_database(tmp_path / "old.db")
    try:
        await migrate(conn, MIGRATIONS[:3])
        with pytest.raises(AuditUnavailable, match="beacon migrate"):
            await verify_audit(conn)
    finally:
        await conn.close()
