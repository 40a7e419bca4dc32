"""What ``beacon backup``, ``beacon purge`` and ``beacon doctor`` do, for the CLI to call and print.

Storage does the SQL (``storage/maintenance.py``); this module opens the configured database, reaches the
Bot API for the doctor, and turns library failures into ``StorageError``s with one-line messages. Nothing
here prints, logs report content, or echoes a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiosqlite

from bot.config import ConfigError, Settings, load_settings
from storage.audit import AuditUnavailable, verify_audit
from storage.db import DatabaseOpenError, StorageError, open_database
from storage.maintenance import (
    BackupResult,
    MaintenanceError,
    MaintenanceStore,
    MigrationStatus,
    PurgeResult,
    backup_database,
    migration_status,
    open_read_only,
)
from storage.timestamps import utc_now

__all__ = [
    "API_TIMEOUT_SECONDS",
    "OUTBOX_STALE_AFTER",
    "Check",
    "backup",
    "doctor",
    "format_age",
    "purge",
]

# How long the doctor waits for getMe: long enough for a slow link, short enough for a health probe.
API_TIMEOUT_SECONDS = 5.0
# An alert still unsent after this long means alerts are not reaching the coordinators (delivery paces
# itself at 20 a minute per group and backs off at most 5 minutes, so a healthy queue drains sooner).
OUTBOX_STALE_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Check:
    """One line of ``beacon doctor``: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


def format_age(age: timedelta) -> str:
    """A short English duration: ``45 s``, ``12 min``, ``3 h``, ``2 days``."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


async def backup(settings: Settings, target: Path, *, force: bool = False) -> BackupResult:
    """Back the configured database up to ``target`` (see ``storage.maintenance.backup_database``).

    Raises ``DatabaseOpenError`` if there is no database, ``BackupError`` if the backup was not written.
    """
    return await backup_database(settings.database, target, overwrite=force)


async def purge(
    settings: Settings,
    days: int | None = None,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> PurgeResult:
    """Erase the sensitive data of cases closed for more than ``days`` (default ``BEACON_RETENTION_DAYS``).

    A dry run opens the database read-only and only counts. Raises ``DatabaseOpenError`` if there is no
    database, ``MaintenanceError`` if its schema is not current or SQLite fails.
    """
    days = settings.retention_days if days is None else days
    if not settings.database.is_file():
        raise DatabaseOpenError(f"no database at {settings.database}")
    conn = await (open_read_only(settings.database) if dry_run else open_database(settings.database))
    try:
        _require_current(await migration_status(conn))
        return await MaintenanceStore(conn, clock=clock).purge_closed(days, dry_run=dry_run)
    except aiosqlite.Error as exc:
        raise MaintenanceError(f"the purge failed: {exc}") from exc
    finally:
        await conn.close()


def _require_current(status: MigrationStatus) -> None:
    if status.unknown:
        raise MaintenanceError(
            f"the database was migrated by a newer version of Beacon ({', '.join(status.unknown)})"
        )
    if status.pending:
        raise MaintenanceError(f"the database lacks {len(status.pending)} migration(s): run beacon migrate")


# --- doctor ------------------------------------------------------------------------------------------------


async def doctor(
    load: Callable[[], Settings] = load_settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    api_timeout: float = API_TIMEOUT_SECONDS,
) -> AsyncIterator[Check]:
    """Check the configuration, the database and the Bot API, yielding one ``Check`` as each finishes.

    Read-only: the database is opened with SQLite's read-only mode and is never created or migrated.
    Checks that need the configuration or the database are skipped when those fail (their own line
    says why).
    """
    try:
        settings = load()
    except ConfigError as exc:
        yield Check("configuration", False, str(exc))
        return
    yield Check("configuration", True, f"loaded (database {settings.database})")

    try:
        conn = await open_read_only(settings.database)
    except StorageError as exc:
        yield Check("database", False, str(exc))
    else:
        try:
            yield Check("database", True, f"{settings.database} (WAL, synchronous=FULL, secure_delete)")
            async for check in _database_checks(conn, clock()):
                yield check
        finally:
            await conn.close()

    yield await _bot_api(settings, api_timeout)
    if settings.coordinator_chat_id is None:
        yield Check(
            "coordinators' group",
            False,
            "BEACON_COORDINATOR_CHAT_ID is not set: reports are stored but nobody is alerted",
        )
    else:
        yield Check("coordinators' group", True, f"configured ({settings.coordinator_chat_id})")


async def _database_checks(conn: aiosqlite.Connection, now: datetime) -> AsyncIterator[Check]:
    """Migrations, outbox, dead letters and audit trail, each a ✗ with the reason if it cannot be read."""
    status = await migration_status(conn)
    if status.unknown:
        yield Check("migrations", False, f"migrated by a newer Beacon ({', '.join(status.unknown)})")
    elif status.pending:
        names = ", ".join(status.pending)
        yield Check("migrations", False, f"{len(status.pending)} pending ({names}): run beacon migrate")
    else:
        yield Check("migrations", True, f"all {len(status.applied)} applied")

    store = MaintenanceStore(conn)
    try:
        backlog = await store.outbox_backlog()
    except aiosqlite.Error as exc:
        yield Check("outbox", False, f"cannot be read ({exc})")
    else:
        if backlog.oldest is None:
            yield Check("outbox", True, "no alerts waiting")
        else:
            age = now - backlog.oldest
            detail = f"{backlog.count} alert(s) waiting, the oldest for {format_age(age)}"
            if age > OUTBOX_STALE_AFTER:
                yield Check("outbox", False, f"{detail}: alerts are not reaching the coordinators")
            else:
                yield Check("outbox", True, detail)

    try:
        dead = await store.dead_letters()
    except aiosqlite.Error as exc:
        yield Check("dead letters", False, f"cannot be read ({exc})")
    else:
        if dead.open_cases:
            detail = f"{dead.total} ({dead.open_cases} about open cases): see the admins' private alerts"
            yield Check("dead letters", False, detail)
        else:
            yield Check("dead letters", True, "none" if not dead.total else f"{dead.total}, all closed cases")

    try:
        audit = await verify_audit(conn)
    except (AuditUnavailable, aiosqlite.Error) as exc:
        yield Check("audit trail", False, f"cannot be read ({exc})")
    else:
        if audit.intact:
            yield Check("audit trail", True, f"intact, {audit.entries} entries")
        else:
            yield Check("audit trail", False, f"broken at entry {audit.broken_id}: {audit.problem}")


def _public_url(url: str) -> str:
    """``url`` without any user:password part, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def _bot_api(settings: Settings, seconds: float) -> Check:
    """Call getMe with a short timeout; never put the token in the result."""
    # Imported here: the other checks (and the other commands) do not need python-telegram-bot.
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
    from telegram.request import HTTPXRequest

    token = settings.bot_token.get_secret_value()
    where = _public_url(settings.api_url)

    def request() -> HTTPXRequest:
        return HTTPXRequest(
            connect_timeout=seconds, read_timeout=seconds, write_timeout=seconds, pool_timeout=seconds
        )

    bot = Bot(
        token,
        base_url=f"{settings.api_url}/bot",
        base_file_url=f"{settings.api_url}/file/bot",
        request=request(),
        get_updates_request=request(),
    )
    try:
        async with asyncio.timeout(seconds * 2):
            async with bot:
                username = bot.username
    except InvalidToken:
        return Check("Bot API", False, f"{where} rejected BEACON_BOT_TOKEN")
    except (TimedOut, TimeoutError):
        return Check("Bot API", False, f"no answer from {where} within {seconds:g} s")
    except NetworkError as exc:
        # PTB's NetworkError wraps httpx's; its text is the connection error, never the request URL, but
        # the token is taken out anyway.
        reason = str(exc).replace(token, "<redacted>")
        return Check("Bot API", False, f"cannot reach {where} ({type(exc).__name__}: {reason})")
    except TelegramError as exc:
        reason = str(exc).replace(token, "<redacted>")
        return Check("Bot API", False, f"{where} answered with an error ({type(exc).__name__}: {reason})")
    return Check("Bot API", True, f"reachable at {where} as @{username}")
