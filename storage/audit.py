"""The audit trail: an append-only, hash-chained log of who did what to which case, and its verification.

Each entry's hash covers the previous entry's hash and the entry's own fields, so editing, inserting or
removing an entry (even with the append-only triggers dropped) breaks the chain from that entry on.
Entries hold codes and ids only: never report content, never note text, never a name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import StorageError
from storage.timestamps import from_db_time, to_db_time

__all__ = [
    "GENESIS_HASH",
    "AuditCheck",
    "AuditEntry",
    "AuditUnavailable",
    "AuditValue",
    "append_audit",
    "audit_entries",
    "entry_hash",
    "verify_audit",
]

AuditValue = str | int | bool | None

# The prev_hash of the first entry.
GENESIS_HASH = "0" * 64

# Details are codes and ids: a short snake_case key, a short value. The limits keep free text (a note, a
# report's words) out of the trail even if a caller passes it by mistake.
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DETAIL_TEXT = 64
MAX_ACTION = 32


class AuditUnavailable(StorageError):
    """The database has no audit trail (not migrated to 0004_workflow)."""


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the trail as stored. ``actor_id`` is a staff member's id, or None for the system or a
    reporter."""

    id: int
    at: datetime
    actor_id: int | None
    action: str
    case_id: str | None
    details: Mapping[str, AuditValue]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditCheck:
    """The outcome of ``verify_audit``: how many entries were checked, and the first broken one, if any.

    ``head_hash`` is the hash of the last intact entry: noting it elsewhere (a ticket, a printout) lets a
    later check notice entries cut off the end, which a chain alone cannot.
    """

    entries: int
    broken_id: int | None = None
    problem: str | None = None
    head_hash: str = GENESIS_HASH

    @property
    def intact(self) -> bool:
        return self.broken_id is None


def _canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 as is; the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_details(details: Mapping[str, AuditValue]) -> None:
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY.match(key):
            raise ValueError(f"audit detail key {key!r} is not a short snake_case code")
        if value is not None and not isinstance(value, str | int):  # bool is an int
            raise ValueError(f"audit detail {key} must be text, a number, a flag or None")
        if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
            raise ValueError(f"audit detail {key} is too long to be a code or an id")


def entry_hash(
    *,
    entry_id: int,
    at: str,
    actor_id: int | None,
    action: str,
    case_id: str | None,
    details: str,
    prev_hash: str,
) -> str:
    """The SHA-256 (hex) that chains an entry: over ``prev_hash``, a newline, and the canonical JSON of the
    entry's stored fields (``at`` and ``details`` exactly as stored)."""
    fields = {
        "id": entry_id,
        "at": at,
        "actor_id": actor_id,
        "action": action,
        "case_id": case_id,
        "details": details,
    }
    return hashlib.sha256(f"{prev_hash}\n{_canonical(fields)}".encode()).hexdigest()


async def append_audit(
    conn: aiosqlite.Connection,
    *,
    at: datetime,
    actor_id: int | None,
    action: str,
    case_id: str | None,
    details: Mapping[str, AuditValue],
) -> int:
    """Append one entry to the trail and return its id. Call it inside an open ``transaction(conn)``.

    The write lock that transaction holds is what keeps two writers from chaining onto the same entry.
    Raises ``RuntimeError`` outside a transaction, ``ValueError`` for an action or details that are not
    short codes and ids (see ``MAX_DETAIL_TEXT``).
    """
    if not conn.in_transaction:
        raise RuntimeError("append_audit must run inside transaction(conn)")
    if not action or len(action) > MAX_ACTION:
        raise ValueError("an audit action is a short code")
    _check_details(details)
    rows = list(await conn.execute_fetchall("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"))
    last_id, prev_hash = (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS_HASH)
    entry_id = last_id + 1
    stored_at = to_db_time(at)
    stored_details = _canonical(dict(details))
    digest = entry_hash(
        entry_id=entry_id,
        at=stored_at,
        actor_id=actor_id,
        action=action,
        case_id=case_id,
        details=stored_details,
        prev_hash=prev_hash,
    )
    await conn.execute(
        "INSERT INTO audit_log (id, at, actor_id, action, case_id, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (entry_id, stored_at, actor_id, action, case_id, stored_details, prev_hash, digest),
    )
    return entry_id


_SELECT_ENTRIES = "SELECT id, at, actor_id, action, case_id, details, prev_hash, hash FROM audit_log"


async def verify_audit(conn: aiosqlite.Connection) -> AuditCheck:
    """Walk the trail from the first entry and return the first break, if any.

    An entry is broken if its id does not follow the previous one (entries removed), its ``prev_hash`` is
    not the previous entry's hash, or its hash does not match its fields (edited). Checking stops at the
    first break; ``entries`` counts the entries checked, the broken one included. Raises
    ``AuditUnavailable`` if the database has no trail.
    """
    checked = 0
    expected_id = 1
    prev_hash = GENESIS_HASH
    try:
        cursor = await conn.execute(f"{_SELECT_ENTRIES} ORDER BY id")
    except aiosqlite.OperationalError as exc:
        raise AuditUnavailable(f"no audit trail in this database (run beacon migrate): {exc}") from exc
    async with cursor:
        async for row in cursor:
            entry_id, at, actor_id, action, case_id, details, stored_prev, stored_hash = row
            checked += 1
            problem = None
            if entry_id != expected_id:
                missing = f"entry {expected_id}" if entry_id == expected_id + 1 else "entries"
                problem = f"{missing} before it missing (expected id {expected_id})"
            elif stored_prev != prev_hash:
                problem = "prev_hash does not match the previous entry's hash"
            elif stored_hash != entry_hash(
                entry_id=entry_id,
                at=at,
                actor_id=actor_id,
                action=action,
                case_id=case_id,
                details=details,
                prev_hash=stored_prev,
            ):
                problem = "hash does not match the entry's contents (edited)"
            if problem is not None:
                return AuditCheck(
                    entries=checked, broken_id=int(entry_id), problem=problem, head_hash=prev_hash
                )
            expected_id += 1
            prev_hash = str(stored_hash)
    return AuditCheck(entries=checked, head_hash=prev_hash)


async def audit_entries(
    conn: aiosqlite.Connection, case_id: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The latest ``limit`` entries, newest first; only those about ``case_id`` when it is given."""
    if case_id is None:
        rows = await conn.execute_fetchall(f"{_SELECT_ENTRIES} ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = await conn.execute_fetchall(
            f"{_SELECT_ENTRIES} WHERE case_id = ? ORDER BY id DESC LIMIT ?",
            (case_id, limit),
        )
    return [
        AuditEntry(
            id=int(row[0]),
            at=from_db_time(row[1]),
            actor_id=row[2],
            action=str(row[3]),
            case_id=row[4],
            details=json.loads(row[5]),
            prev_hash=str(row[6]),
            hash=str(row[7]),
        )
        for row in rows
    ]
