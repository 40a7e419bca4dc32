"""Schema migrations: named, ordered, recorded in ``schema_migrations``, each applied in its own transaction.

To change the schema, append a ``Migration`` to ``MIGRATIONS`` with the next number. Never edit or
reorder one that has shipped: databases in the field have already applied it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

import aiosqlite

from storage.db import StorageError, transaction

__all__ = ["MIGRATIONS", "Migration", "MigrationError", "applied_migrations", "migrate"]


class MigrationError(StorageError):
    """A migration failed, or the database was migrated by a newer version of Beacon."""


class Migration(NamedTuple):
    """One schema change: ``name`` orders it and records it; ``sql`` holds one or more statements."""

    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        """
        -- Telegram may deliver an update more than once (a retried webhook, a restart during polling):
        -- an update id recorded here has been fully handled and is skipped.
        CREATE TABLE processed_updates (
            update_id INTEGER PRIMARY KEY,
            processed_at TEXT NOT NULL
        );
        """,
    ),
)

_COMMENT = re.compile(r"--[^\n]*|/\*.*?(\*/|$)", re.DOTALL)

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)
"""


def _statements(sql: str) -> Iterator[str]:
    """Split ``sql`` into complete statements (``executescript`` would commit our open transaction)."""
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        # complete_statement knows about string literals and CREATE TRIGGER ... BEGIN ... END bodies.
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                yield pending
            pending = ""
    if _has_code(pending.removesuffix(";")):
        raise MigrationError("migration ends with an incomplete statement")


def _has_code(sql: str) -> bool:
    """Tell whether ``sql`` holds anything besides whitespace, comments and semicolons."""
    return bool(_COMMENT.sub(" ", sql).replace(";", " ").strip())


async def applied_migrations(conn: aiosqlite.Connection) -> list[str]:
    """Return the names of the migrations already applied to ``conn``, in order."""
    await conn.execute(_CREATE_LEDGER)
    rows = await conn.execute_fetchall("SELECT name FROM schema_migrations ORDER BY name")
    return [str(row[0]) for row in rows]


async def migrate(conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``conn`` lacks, in order, each in its own transaction.

    Returns the names applied (empty if the schema was current). Safe to run again, and from two
    processes at once. Raises ``MigrationError`` if a migration fails (it is rolled back) or if the
    database records migrations this version does not know.
    """
    known = [migration.name for migration in migrations]
    if known != sorted(set(known)):
        raise MigrationError("migration names must be unique and in ascending order")
    unknown = sorted(set(await applied_migrations(conn)) - set(known))
    if unknown:
        raise MigrationError(
            f"the database was migrated by a newer version of Beacon ({', '.join(unknown)}); "
            "upgrade Beacon rather than downgrading"
        )

    applied: list[str] = []
    for migration in migrations:
        try:
            async with transaction(conn):
                # Checked inside the write lock: another process may have applied it meanwhile.
                rows = await conn.execute_fetchall(
                    "SELECT 1 FROM schema_migrations WHERE name = ?", (migration.name,)
                )
                if rows:
                    continue
                for statement in _statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, datetime.now(UTC).isoformat(timespec="seconds")),
                )
        except aiosqlite.Error as exc:
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
        applied.append(migration.name)
    return applied
