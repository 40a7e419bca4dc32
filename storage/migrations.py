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
    Migration(
        "0002_intake",
        """
        -- Times are ISO 8601 in UTC with microseconds, so text order is time order.
        -- No column ever holds a Telegram user id, username, name or chat id in clear: reporters appear
        -- only as keyed-HMAC pseudonyms, and the chat id to write back is in case_secrets, encrypted.

        -- One row per report. What is here in clear is what coordinators triage, map and export by:
        -- codes, ranges and quasi-identifiers, never free text.
        CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
            reasons TEXT NOT NULL DEFAULT '[]',                 -- JSON list of Reason codes, by weight
            score INTEGER NOT NULL,
            corroborating_cases INTEGER NOT NULL DEFAULT 0,
            rules_version TEXT NOT NULL,
            reporter_type TEXT,
            immediate_danger INTEGER CHECK (immediate_danger IN (0, 1)),   -- NULL: not answered
            fast_track INTEGER NOT NULL DEFAULT 0 CHECK (fast_track IN (0, 1)),
            place_unknown INTEGER NOT NULL DEFAULT 0 CHECK (place_unknown IN (0, 1)),
            country TEXT,
            area_id TEXT,
            -- Rounded to 2 decimals (about 1 km) for hotspot maps. The exact point is in case_secrets.
            approx_latitude REAL,
            approx_longitude REAL,
            passport TEXT,
            phone TEXT,
            people TEXT,
            nationalities TEXT NOT NULL DEFAULT '[]',          -- JSON list of codes
            contact TEXT,
            language TEXT NOT NULL,
            victim_age_band TEXT,
            victim_sex TEXT,
            victim_nationality TEXT,
            quarantined INTEGER NOT NULL DEFAULT 0 CHECK (quarantined IN (0, 1)),
            withdrawn_at TEXT
        );
        CREATE INDEX cases_by_created_at ON cases (created_at);

        CREATE TABLE case_conditions (
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            condition TEXT NOT NULL,
            PRIMARY KEY (case_id, condition)
        ) WITHOUT ROWID;

        -- Sensitive fields, one AES-GCM ciphertext each, bound to ('case_secrets', field, case_id).
        CREATE TABLE case_secrets (
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            field TEXT NOT NULL,
            ciphertext BLOB NOT NULL,
            PRIMARY KEY (case_id, field)
        );

        -- Sanitised photos and voice notes. The ciphertext is bound to ('case_media', 'content', id).
        CREATE TABLE case_media (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            ciphertext BLOB NOT NULL
        );
        CREATE INDEX case_media_by_case ON case_media (case_id);

        -- Texts appended with /add. The ciphertext is bound to ('case_additions', 'text', id).
        CREATE TABLE case_additions (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            ciphertext BLOB NOT NULL
        );
        CREATE INDEX case_additions_by_case ON case_additions (case_id);

        -- Corroboration: a newer case (case_id) links to the earlier ones it was matched with.
        CREATE TABLE case_links (
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            linked_case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            PRIMARY KEY (case_id, linked_case_id),
            CHECK (case_id <> linked_case_id)
        ) WITHOUT ROWID;
        CREATE INDEX case_links_by_linked ON case_links (linked_case_id);

        -- Which reporter (keyed-HMAC pseudonym) filed which case: /status from the same account.
        CREATE TABLE reporter_links (
            pseudonym TEXT NOT NULL,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            PRIMARY KEY (pseudonym, case_id)
        ) WITHOUT ROWID;
        CREATE INDEX reporter_links_by_case ON reporter_links (case_id);

        -- Receipt codes are never stored: a keyed HMAC finds the row, a salted scrypt hash verifies it.
        CREATE TABLE receipts (
            case_id TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
            lookup TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL
        );

        -- One row per report filed, for per-reporter rate limits, not linked to a case.
        CREATE TABLE rate_events (
            id INTEGER PRIMARY KEY,
            pseudonym TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX rate_events_by_pseudonym ON rate_events (pseudonym, created_at);

        -- Messages owed to the coordinators, written in the same transaction as the change behind them.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            sent_at TEXT,
            dead_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox (priority, id) WHERE sent_at IS NULL AND dead_at IS NULL;

        -- python-telegram-bot persistence. Keys hold chat and user ids, so they are stored encrypted and
        -- found by a keyed HMAC (lookup). States and user data are encrypted JSON, never pickle.
        CREATE TABLE conversations (
            lookup TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            key BLOB NOT NULL,
            state BLOB NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX conversations_by_name ON conversations (name, updated_at);

        CREATE TABLE user_data (
            lookup TEXT PRIMARY KEY,
            user_key BLOB NOT NULL,
            data BLOB NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "0003_coordination",
        """
        -- Where each case lives in the coordinators' group: its forum topic (NULL in a group that is not a
        -- forum) and its ticket card, edited in place when the case changes.
        CREATE TABLE case_tickets (
            case_id TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            thread_id INTEGER,
            card_message_id INTEGER,
            created_at TEXT NOT NULL
        );

        -- Small facts the bot learns at run time, such as the coordinators' group's new id after
        -- Telegram migrated it to a supergroup.
        CREATE TABLE bot_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "0004_workflow",
        """
        -- Coordinators' workflow. Staff are identified by their Telegram user id, in clear: they act
        -- under their own name in their own group, and a role must be checked on every action. Reporters
        -- never appear here: they have no role and never act on cases.

        -- Who may do what. A revoked member keeps their row (revoked_at set) so that cards and the audit
        -- trail can still name what they did; role_of() treats them as having no role.
        CREATE TABLE staff (
            user_id INTEGER PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'analyst')),
            label TEXT,                                        -- their first name, shown on cards
            on_duty INTEGER NOT NULL DEFAULT 0 CHECK (on_duty IN (0, 1)),
            granted_by INTEGER,                                -- NULL: BEACON_ADMINS (the operator)
            granted_at TEXT NOT NULL,
            revoked_at TEXT
        );

        -- The coordinator holding the case (a staff user id), why it was closed, and whether a coordinator
        -- set the priority by hand (a later re-triage must not undo that).
        ALTER TABLE cases ADD COLUMN assignee_id INTEGER;
        ALTER TABLE cases ADD COLUMN closing_reason TEXT;
        ALTER TABLE cases ADD COLUMN priority_overridden INTEGER NOT NULL DEFAULT 0
            CHECK (priority_overridden IN (0, 1));
        CREATE INDEX cases_by_status ON cases (status, priority, created_at);
        CREATE INDEX cases_by_assignee ON cases (assignee_id) WHERE assignee_id IS NOT NULL;

        -- Coordinators' internal notes. The ciphertext is bound to ('case_notes', 'text', id).
        CREATE TABLE case_notes (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            author_id INTEGER,                                 -- a staff user id
            created_at TEXT NOT NULL,
            ciphertext BLOB NOT NULL
        );
        CREATE INDEX case_notes_by_case ON case_notes (case_id, created_at);

        -- Short codes coordinators put on cases (e.g. "embassy-vn"), never free text.
        CREATE TABLE case_tags (
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (case_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX case_tags_by_tag ON case_tags (tag);

        -- Who did what to which case, when: codes and ids only. Hash-chained (see storage/audit.py) and
        -- append-only. case_id has no foreign key on purpose: the trail outlives a purged case, and a
        -- cascading delete would be refused by the trigger below anyway.
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor_id INTEGER,                                  -- a staff user id; NULL: system or reporter
            action TEXT NOT NULL,
            case_id TEXT,
            details TEXT NOT NULL DEFAULT '{}',                -- canonical JSON of codes and ids
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX audit_log_by_case ON audit_log (case_id, id) WHERE case_id IS NOT NULL;

        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN
            SELECT RAISE(ABORT, 'audit_log is append-only');
        END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN
            SELECT RAISE(ABORT, 'audit_log is append-only');
        END;
        """,
    ),
    Migration(
        "0005_relay",
        """
        -- Messages from the team held for a reporter who asked to be written to only when they check in
        -- (or who cannot be reached now). Encrypted; erased once shown, or when the case is withdrawn.
        CREATE TABLE reporter_messages (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            ciphertext BLOB NOT NULL
        );
        CREATE INDEX reporter_messages_by_case ON reporter_messages (case_id, created_at);
        CREATE TRIGGER reporter_messages_erased_on_withdrawal
        AFTER UPDATE OF withdrawn_at ON cases
        WHEN NEW.withdrawn_at IS NOT NULL
        BEGIN
            DELETE FROM reporter_messages WHERE case_id = NEW.id;
        END;
        """,
    ),
    Migration(
        "0006_burst_digest",
        """
        -- During a burst, lower-priority new cases are first announced together in one digest message;
        -- their own topic and card follow as the group's rate limit allows.
        ALTER TABLE outbox ADD COLUMN announced_at TEXT;
        """,
    ),
    Migration(
        "0007_held_media",
        """
        -- A held team message may carry a sanitised photo or voice note (encrypted like the text).
        ALTER TABLE reporter_messages ADD COLUMN media_kind TEXT;
        ALTER TABLE reporter_messages ADD COLUMN media_mime TEXT;
        ALTER TABLE reporter_messages ADD COLUMN media BLOB;
        """,
    ),
    Migration(
        "0008_growth_indexes",
        """
        -- Indexes that keep the busiest reads fast as cases accumulate (measured by bench/growth.py).
        -- The open statuses are spelled out: a partial index serves only queries that repeat its WHERE
        -- term exactly (storage/workflow.py and storage/stats.py do, from bot.domain.workflow's list).

        -- /queue and /stats: open, not quarantined cases in queue order; the last columns let /stats
        -- count them (by priority, age and area, with people held) from the index alone.
        CREATE INDEX cases_open_queue
            ON cases (priority, created_at, id, area_id, people, status, quarantined)
            WHERE quarantined = 0 AND status IN ('acknowledged', 'in_contact', 'new', 'referred');
        -- /mine: a coordinator's open cases in queue order.
        CREATE INDEX cases_open_by_assignee ON cases (assignee_id, priority, created_at, id)
            WHERE assignee_id IS NOT NULL AND status IN ('acknowledged', 'in_contact', 'new', 'referred');
        -- Corroboration at submit: earlier cases in the same area, or near the same point.
        CREATE INDEX cases_by_area ON cases (area_id, created_at) WHERE area_id IS NOT NULL;
        CREATE INDEX cases_by_approx_latitude ON cases (approx_latitude, created_at)
            WHERE approx_latitude IS NOT NULL;
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
