"""The SQLite connection: open it with safe pragmas, verify they took, and run explicit transactions.

Connections are opened in autocommit mode (``isolation_level=None``): nothing is wrapped in a transaction
implicitly, so code that writes more than one row uses ``async with transaction(conn):``.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DatabaseOpenError",
    "PragmaError",
    "StorageError",
    "open_database",
    "open_read_only",
    "transaction",
    "write_one",
]

BUSY_TIMEOUT_MS = 5000

# (pragma, value to set, value ``PRAGMA <name>`` must then answer). WAL lets readers run during a write;
# synchronous=FULL makes a committed report survive power loss; secure_delete overwrites deleted rows.
_PRAGMAS: tuple[tuple[str, str, str | int], ...] = (
    ("journal_mode", "WAL", "wal"),
    ("synchronous", "FULL", 2),
    ("foreign_keys", "ON", 1),
    ("secure_delete", "ON", 1),
    ("busy_timeout", str(BUSY_TIMEOUT_MS), BUSY_TIMEOUT_MS),
)


class StorageError(Exception):
    """Base class for storage failures."""


class DatabaseOpenError(StorageError):
    """The database file or its folder cannot be created or opened."""


class PragmaError(StorageError):
    """A pragma did not take effect (e.g. WAL on a file system that cannot share memory)."""


def _prepare_path(path: Path) -> None:
    """Create the folder and an empty database file, readable by this user only, if they are missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # SQLite gives its -wal and -shm files the database file's permissions, so this covers them too.
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


async def open_database(path: Path | str) -> aiosqlite.Connection:
    """Open (creating if needed) the SQLite database at ``path`` with Beacon's pragmas, and check them.

    ``path`` must be a file: an in-memory database cannot use WAL. Raises ``DatabaseOpenError`` if the
    file cannot be created or opened, ``PragmaError`` if a pragma did not take.
    """
    path = Path(path)
    try:
        await asyncio.to_thread(_prepare_path, path)
    except OSError as exc:
        raise DatabaseOpenError(f"cannot open database {path}: {exc}") from exc
    return await _connect(path, str(path), uri=False)


async def open_read_only(path: Path | str) -> aiosqlite.Connection:
    """Open an existing database read-only and check Beacon's pragmas on it.

    SQLite itself refuses every write on this connection, so a check that uses it cannot change the
    database. Raises ``DatabaseOpenError`` if there is no file or it cannot be opened, ``PragmaError`` if
    a pragma does not hold (e.g. the file is not in WAL mode).
    """
    path = Path(path)
    if not await asyncio.to_thread(path.is_file):
        raise DatabaseOpenError(f"no database at {path}")
    return await _connect(path, f"{path.resolve().as_uri()}?mode=ro", uri=True)


async def _connect(path: Path, target: str, *, uri: bool) -> aiosqlite.Connection:
    """Connect in autocommit mode (``isolation_level=None``), then apply and check the pragmas."""
    try:
        conn = await aiosqlite.connect(target, uri=uri, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except (OSError, aiosqlite.Error) as exc:
        raise DatabaseOpenError(f"cannot open database {path}: {exc}") from exc
    try:
        await _apply_pragmas(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _apply_pragmas(conn: aiosqlite.Connection) -> None:
    """Set each pragma, then read it back: SQLite ignores a pragma it cannot apply without an error."""
    for name, value, expected in _PRAGMAS:
        try:
            await conn.execute(f"PRAGMA {name} = {value}")
            rows = list(await conn.execute_fetchall(f"PRAGMA {name}"))
        except aiosqlite.Error as exc:
            raise PragmaError(f"PRAGMA {name} failed: {exc}") from exc
        actual = rows[0][0] if rows else None
        if isinstance(actual, str):
            actual = actual.lower()
        if actual != expected:
            raise PragmaError(f"PRAGMA {name} is {actual!r}, expected {expected!r}")


# One lock per connection: coroutines sharing a connection share its one transaction, so without it a
# second ``transaction()`` would fail ("cannot start a transaction within a transaction") or, worse, a
# statement from another coroutine would join (and be rolled back with) someone else's transaction.
_TRANSACTION_LOCKS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _turns(conn: aiosqlite.Connection) -> asyncio.Lock:
    return _TRANSACTION_LOCKS.setdefault(conn, asyncio.Lock())


async def write_one(conn: aiosqlite.Connection, sql: str, parameters: Sequence[Any] = ()) -> None:
    """Run one writing statement as a transaction of its own, taking turns with ``transaction()``.

    SQLite makes a single statement atomic in autocommit mode, so this is one round trip to the
    connection's thread where ``transaction()`` needs three (BEGIN, the statement, COMMIT). The turn
    keeps it out of another coroutine's open transaction.
    """
    async with _turns(conn):
        # The statement has run to completion; its cursor holds nothing and needs no closing round trip.
        await conn.execute(sql, parameters)


@asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """Run the block in one write transaction: committed if it finishes, rolled back if it raises.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so a second writer (another connection or
    process) waits, up to the busy timeout, instead of failing halfway with "database is locked".
    Coroutines sharing ``conn`` take turns. Not re-entrant: do not open a transaction inside another.
    """
    async with _turns(conn):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            await conn.commit()
        except BaseException:
            # Also after a failed COMMIT (e.g. a disk error), which leaves the transaction open.
            await conn.rollback()
            raise
