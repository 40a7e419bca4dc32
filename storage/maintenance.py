"""Operations on the database as a whole: online backups, the retention purge, and read-only health figures.

Nothing here knows Telegram. ``bot/ops.py`` calls it for ``beacon backup``, ``beacon purge`` and
``beacon doctor``; the webhook's health check reads the outbox backlog from here too.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite

from bot.domain.models import CaseStatus
from storage.audit import append_audit
from storage.db import BUSY_TIMEOUT_MS, DatabaseOpenError, StorageError, open_read_only, transaction
from storage.migrations import MIGRATIONS
from storage.timestamps import from_db_time, to_db_time, utc_now

__all__ = [
    "ERASED_CASE_COLUMNS",
    "ERASED_TABLES",
    "KEPT_TABLES",
    "MAX_RETENTION_DAYS",
    "RETENTION_PURGE",
    "BackupError",
    "BackupResult",
    "DeadLetters",
    "MaintenanceError",
    "MaintenanceStore",
    "MigrationStatus",
    "OutboxBacklog",
    "PurgeResult",
    "backup_database",
    "migration_status",
    "open_read_only",
]

# Audit action of a purge run (no actor, no case: the details carry the count and the retention).
RETENTION_PURGE = "retention_purge"

# The migrations this version of Beacon knows, in order.
_KNOWN = tuple(migration.name for migration in MIGRATIONS)

# A cutoff further back than this would fall before year 1; nobody keeps cases for a century anyway.
MAX_RETENTION_DAYS = 36_500

# What a purge deletes, by case: every table that holds a case's sensitive data. All of it is encrypted
# except the reporter's pseudonym (reporter_links) and the receipt's lookup and hash (receipts), which
# link a Telegram account or a code to the case.
ERASED_TABLES: tuple[str, ...] = (
    "case_secrets",  # free text, place details, exact point, the victim's identity, the chat id
    "case_media",  # photos and voice notes
    "case_additions",  # texts sent with /add
    "case_notes",  # coordinators' internal notes
    "reporter_messages",  # team messages held for the reporter (text and media)
    "reporter_links",  # the reporter's pseudonym
    "receipts",  # the receipt code's lookup and hash
)
# Tables tied to a case that a purge keeps: codes and ids that statistics, the cards, the audit trail and
# corroboration still need, and nothing a reporter wrote.
KEPT_TABLES: tuple[str, ...] = (
    "case_conditions",
    "case_links",
    "case_tags",
    "case_tickets",
    "outbox",
    "audit_log",
)
# Columns of ``cases`` a purge sets to NULL: the approximate point (the area stays, in area_id).
ERASED_CASE_COLUMNS: tuple[str, ...] = ("approx_latitude", "approx_longitude")

_HOLDS_DATA = " OR ".join(
    [
        *(f"EXISTS (SELECT 1 FROM {t} WHERE {t}.case_id = cases.id)" for t in ERASED_TABLES),  # noqa: S608 (constants only)
        *(f"{column} IS NOT NULL" for column in ERASED_CASE_COLUMNS),
    ]
)
# Closed, untouched since the cutoff, and still holding something to erase (so a second run finds none).
# updated_at moves with every change, closing included: a case is kept at least N days after it was
# closed, and longer if someone added to it since.
_PURGEABLE = f"SELECT id FROM cases WHERE status = ? AND updated_at < ? AND ({_HOLDS_DATA}) ORDER BY id"  # noqa: S608 (constants only)


class MaintenanceError(StorageError):
    """A maintenance operation cannot run on this database (e.g. secure_delete is off)."""


class BackupError(MaintenanceError):
    """The backup was not written: the target exists or cannot be written, or the copy failed its check.

    Nothing is left behind at the target.
    """


@dataclass(frozen=True)
class BackupResult:
    """A backup written: where, how many bytes, how many cases it holds."""

    path: Path
    size: int
    cases: int


@dataclass(frozen=True)
class PurgeResult:
    """A purge run: the cases erased (or, in a dry run, that would be), and whether the WAL was emptied.

    ``checkpointed`` is False when a reader kept ``wal_checkpoint(TRUNCATE)`` from finishing: the erased
    pages may then still be in the -wal file until the next checkpoint.
    """

    cases: int
    cutoff: datetime
    dry_run: bool
    checkpointed: bool


@dataclass(frozen=True)
class OutboxBacklog:
    """Alerts not yet sent (due or backing off; dead letters excluded) and when the oldest was queued."""

    count: int
    oldest: datetime | None


@dataclass(frozen=True)
class DeadLetters:
    """Alerts given up for good: how many, and how many of them are about cases still open."""

    total: int
    open_cases: int


@dataclass(frozen=True)
class MigrationStatus:
    """Which known migrations the database lacks, and which it has that this version does not know."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not self.pending and not self.unknown


async def migration_status(conn: aiosqlite.Connection, known: Sequence[str] = _KNOWN) -> MigrationStatus:
    """Compare the migrations recorded in the database with ``known``, without writing anything.

    Unlike ``storage.migrations.applied_migrations``, a missing ledger is not created: it means nothing
    was applied.
    """
    ledger = await conn.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    applied: tuple[str, ...] = ()
    if ledger:
        rows = await conn.execute_fetchall("SELECT name FROM schema_migrations ORDER BY name")
        applied = tuple(str(row[0]) for row in rows)
    return MigrationStatus(
        applied=applied,
        pending=tuple(name for name in known if name not in applied),
        unknown=tuple(name for name in applied if name not in known),
    )


class MaintenanceStore:
    """The retention purge and the figures a health check reads, over one connection.

    ``clock`` returns the current (timezone-aware) time; tests pass a fixed one.
    """

    def __init__(self, conn: aiosqlite.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    async def purge_closed(self, days: int, *, dry_run: bool = False) -> PurgeResult:
        """Erase the sensitive data of cases closed and untouched for more than ``days`` days.

        Deletes their rows in ``ERASED_TABLES`` and the rate-limit events that would re-link their
        reporters, nulls ``ERASED_CASE_COLUMNS``, and keeps the case row's codes and dates, its conditions,
        links, tags, ticket and outbox rows, and the audit trail. Rate-limit events older than the cutoff go
        too (they only serve an hourly limit). One transaction, with one audit entry ``retention_purge``
        carrying the count; then ``wal_checkpoint(TRUNCATE)``, so that the erased pages (zeroed by
        secure_delete) leave the -wal file. ``dry_run`` only counts and writes nothing.

        Raises ``ValueError`` for ``days`` out of 1..``MAX_RETENTION_DAYS``, ``MaintenanceError`` if the
        connection does not run with secure_delete, ``aiosqlite.Error`` if the schema is not current.
        """
        if not 1 <= days <= MAX_RETENTION_DAYS:
            raise ValueError(f"the retention is 1 to {MAX_RETENTION_DAYS} days")
        now = self._clock()
        cutoff = now - timedelta(days=days)
        params = (CaseStatus.CLOSED.value, to_db_time(cutoff))
        if dry_run:
            found = list(await self._conn.execute_fetchall(_PURGEABLE, params))
            return PurgeResult(cases=len(found), cutoff=cutoff, dry_run=True, checkpointed=False)

        secure = list(await self._conn.execute_fetchall("PRAGMA secure_delete"))
        if not secure or secure[0][0] != 1:
            raise MaintenanceError("secure_delete is off on this connection: erased bytes would remain")
        conn = self._conn
        async with transaction(conn):
            # Read again under the write lock: a case reopened meanwhile is left alone.
            ids = [(str(row[0]),) for row in await conn.execute_fetchall(_PURGEABLE, params)]
            # The rate event holds the reporter's pseudonym and the case's exact creation time: it would
            # re-link the reporter to the case, so it goes before the link does (as on withdrawal).
            await conn.executemany(
                "DELETE FROM rate_events WHERE created_at = (SELECT created_at FROM cases WHERE id = ?1) "
                "AND pseudonym IN (SELECT pseudonym FROM reporter_links WHERE case_id = ?1)",
                ids,
            )
            await conn.execute("DELETE FROM rate_events WHERE created_at < ?", (to_db_time(cutoff),))
            for table in ERASED_TABLES:
                await conn.executemany(f"DELETE FROM {table} WHERE case_id = ?", ids)  # noqa: S608 (constants only)
            await conn.executemany(
                f"UPDATE cases SET {', '.join(f'{c} = NULL' for c in ERASED_CASE_COLUMNS)} WHERE id = ?",  # noqa: S608 (constants only)
                ids,
            )
            await append_audit(
                conn,
                at=now,
                actor_id=None,
                action=RETENTION_PURGE,
                case_id=None,
                details={"cases": len(ids), "days": days},
            )
        return PurgeResult(cases=len(ids), cutoff=cutoff, dry_run=False, checkpointed=await self.checkpoint())

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it to zero bytes; False if a reader or writer
        kept it from finishing (within the busy timeout)."""
        rows = await self._conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = next(iter(rows))[0] if rows else 1
        return busy == 0

    async def outbox_backlog(self) -> OutboxBacklog:
        """How many alerts wait to be sent, and when the oldest of them was queued."""
        rows = await self._conn.execute_fetchall(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
        )
        count, oldest = next(iter(rows))
        return OutboxBacklog(int(count), None if oldest is None else from_db_time(oldest))

    async def dead_letters(self) -> DeadLetters:
        """How many alerts were dead-lettered, and how many of those are about cases still open."""
        rows = await self._conn.execute_fetchall(
            "SELECT COUNT(*), COALESCE(SUM(c.status <> ?), 0) FROM outbox o JOIN cases c ON c.id = o.case_id "
            "WHERE o.dead_at IS NOT NULL",
            (CaseStatus.CLOSED.value,),
        )
        total, open_cases = next(iter(rows))
        return DeadLetters(int(total), int(open_cases))


# --- backups -----------------------------------------------------------------------------------------------


async def backup_database(source: Path, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the database at ``source`` to ``target`` while the bot may be writing to it.

    Uses SQLite's online backup API (one consistent snapshot; writers are not blocked in WAL mode) into a
    temporary file created with mode 0600 in ``target``'s folder, switches the copy to a self-contained
    rollback journal, runs ``PRAGMA integrity_check`` on it, syncs it, and only then moves it to
    ``target`` in one rename. The copy holds the same ciphertext as the database: it is no use without
    ``BEACON_SECRET_KEY``, which it does not contain.

    Raises ``DatabaseOpenError`` if ``source`` is missing or cannot be read, ``BackupError`` if ``target``
    exists (unless ``overwrite``) or cannot be written, or the copy fails its integrity check; the
    temporary file is then removed.
    """
    return await asyncio.to_thread(_backup, source, target, overwrite)


def _backup(source: Path, target: Path, overwrite: bool) -> BackupResult:
    if not source.is_file():
        raise DatabaseOpenError(f"no database at {source}")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give the backup file's path")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists (use --force to replace it)")
    try:
        # mkstemp creates the file with mode 0600 (O_EXCL), before a byte of the database is in it.
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BackupError(f"cannot write in {target.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    temporary = Path(name)
    try:
        cases = _copy_and_check(source, temporary)
        _fsync(temporary)
        if overwrite:
            os.replace(temporary, target)
        else:
            _move_without_replacing(temporary, target)
        _fsync(target.parent)
    except FileExistsError as exc:
        raise BackupError(f"{target} exists (use --force to replace it)") from exc
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                temporary.with_name(temporary.name + suffix).unlink()
    return BackupResult(path=target, size=target.stat().st_size, cases=cases)


def _move_without_replacing(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, failing with ``FileExistsError`` if ``target`` exists.

    ``link`` fails if the target appeared meanwhile, where ``rename`` would silently replace it.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}:
            raise
        # A file system without hard links (some network shares): rename, after one more look.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from exc
        os.rename(source, target)
    else:
        source.unlink()


def _copy_and_check(source: Path, copy: Path) -> int:
    """Back ``source`` up into the (empty) file ``copy``, check it, and return its number of cases."""
    try:
        with (
            closing(
                sqlite3.connect(
                    f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
                )
            ) as src,
            closing(sqlite3.connect(copy, isolation_level=None)) as dst,
        ):
            src.backup(dst)
            # The copy inherits WAL mode; a backup file should be one file, with no -wal beside it.
            dst.execute("PRAGMA journal_mode = DELETE")
            problems = [str(row[0]) for row in dst.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"the copy failed its integrity check ({'; '.join(problems[:3])})")
            has_cases = dst.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cases'"
            ).fetchone()
            return int(dst.execute("SELECT COUNT(*) FROM cases").fetchone()[0]) if has_cases else 0
    except sqlite3.Error as exc:
        raise BackupError(f"the backup failed: {exc}") from exc


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries, after a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
