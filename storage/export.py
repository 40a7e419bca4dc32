"""Reading cases for exports: a read-only connection, one snapshot, batches of cases in a stable order.

``ExportReader`` opens its own read-only connection (the bot's connection keeps writing meanwhile) and
holds one read transaction for its whole life, so that the counting pass and the writing pass of an
export see exactly the same cases. Cases come in batches ordered by (created_at, id) with keyset
pagination: memory stays constant however many cases there are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import aiosqlite

from bot.crypto import Keyring
from bot.domain.export import ExportCase, ExportFilters, ExportSecrets, QuasiKey, quasi_key_of
from bot.domain.models import CaseStatus, Priority
from bot.domain.workflow import Action
from storage.audit import AuditValue, append_audit
from storage.db import BUSY_TIMEOUT_MS, DatabaseOpenError, StorageError, transaction
from storage.timestamps import from_db_time, to_db_time, utc_now

__all__ = ["BATCH_SIZE", "ExportReader", "record_export"]

BATCH_SIZE = 1000

_COLUMNS = (
    "c.id, c.created_at, c.updated_at, c.status, c.priority, c.reasons, c.corroborating_cases, "
    "c.reporter_type, c.immediate_danger, c.fast_track, c.place_unknown, c.country, c.area_id, c.passport, "
    "c.phone, c.people, c.nationalities, c.contact, c.language, c.victim_age_band, c.victim_sex, "
    "c.victim_nationality, c.quarantined, c.withdrawn_at, c.closing_reason, "
    "(SELECT label FROM staff WHERE staff.user_id = c.assignee_id)"
)
_QUASI_COLUMNS = (
    "c.created_at, c.country, c.area_id, c.victim_nationality, c.nationalities, c.victim_age_band, "
    "c.victim_sex, c.reporter_type"
)


def _where(filters: ExportFilters, *, only_active: bool) -> tuple[str, list[Any]]:
    """The WHERE clause (constants and placeholders only) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if only_active:
        # Withdrawn reports and suspected floods never leave Beacon below the full level.
        clauses.append("c.withdrawn_at IS NULL AND c.quarantined = 0")
    if filters.since is not None:
        clauses.append("c.created_at >= ?")
        params.append(to_db_time(datetime.combine(filters.since, time.min, tzinfo=UTC)))
    if filters.until is not None:
        clauses.append("c.created_at < ?")
        params.append(to_db_time(datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=UTC)))

    def one_of(column: str, values: Iterable[Any]) -> None:
        items = sorted(values)
        if items:
            clauses.append(f"{column} IN ({', '.join('?' * len(items))})")
            params.extend(items)

    one_of("c.status", (status.value for status in filters.statuses))
    one_of("c.priority", (int(priority) for priority in filters.priorities))
    one_of("c.country", filters.countries)
    one_of("c.area_id", filters.areas)
    if filters.by_indicator:
        either: list[str] = []
        conditions = sorted(condition.value for condition in filters.conditions)
        if conditions:
            either.append(
                "EXISTS (SELECT 1 FROM case_conditions cc WHERE cc.case_id = c.id "  # noqa: S608 (placeholders)
                f"AND cc.condition IN ({', '.join('?' * len(conditions))}))"
            )
            params.extend(conditions)
        if filters.documents:
            either.append("c.passport = 'taken'")
        clauses.append(f"({' OR '.join(either)})")
    return (" AND ".join(clauses) or "1"), params


class ExportReader:
    """A read-only snapshot of the cases, for one export. Use as ``async with ExportReader.open(...)``."""

    def __init__(self, conn: aiosqlite.Connection, keyring: Keyring | None) -> None:
        self._conn = conn
        self._keyring = keyring

    @classmethod
    async def open(cls, path: Path | str, keyring: Keyring | None) -> Self:
        """Open ``path`` read-only and start the snapshot. ``keyring`` is needed only to decrypt (full).

        Raises ``DatabaseOpenError`` if the file is missing or unreadable.
        """
        path = Path(path)
        if not path.is_file():
            raise DatabaseOpenError(f"no database at {path}")
        try:
            conn = await aiosqlite.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
            )
        except (OSError, aiosqlite.Error) as exc:
            raise DatabaseOpenError(f"cannot open database {path}: {exc}") from exc
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("BEGIN")
            # The first read fixes the snapshot every later read of this export sees.
            await conn.execute_fetchall("SELECT COUNT(*) FROM cases")
        except aiosqlite.Error as exc:
            await conn.close()
            raise DatabaseOpenError(f"cannot read database {path}: {exc}") from exc
        return cls(conn, keyring)

    async def close(self) -> None:
        try:
            await self._conn.rollback()
        finally:
            await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def count(self, filters: ExportFilters, *, only_active: bool) -> int:
        where, params = _where(filters, only_active=only_active)
        rows = await self._conn.execute_fetchall(f"SELECT COUNT(*) FROM cases c WHERE {where}", params)  # noqa: S608
        return int(next(iter(rows))[0])

    async def quasi_identifier_counts(self, filters: ExportFilters) -> Counter[QuasiKey]:
        """How many cases share each combination of quasi-identifiers (public level: active cases)."""
        where, params = _where(filters, only_active=True)
        counts: Counter[QuasiKey] = Counter()
        # A new key's values are replaced by one shared copy of each: a million cases make hundreds of
        # thousands of keys, which would otherwise each hold seven strings of their own (3x the memory).
        shared: dict[str | None, str | None] = {}
        async with self._conn.execute(
            f"SELECT {_QUASI_COLUMNS} FROM cases c WHERE {where}",  # noqa: S608 (constants, placeholders)
            params,
        ) as cursor:
            while rows := await cursor.fetchmany(5000):
                for row in rows:
                    key = quasi_key_of(
                        from_db_time(row[0]),
                        row[1],
                        row[2],
                        row[3],
                        json.loads(row[4]),
                        row[5],
                        row[6],
                        row[7],
                    )
                    if key not in counts:
                        key = cast(QuasiKey, tuple(shared.setdefault(value, value) for value in key))
                    counts[key] += 1
        return counts

    async def cases(
        self,
        filters: ExportFilters,
        *,
        only_active: bool,
        decrypt: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> AsyncIterator[list[ExportCase]]:
        """Yield the matching cases in batches, oldest first. ``decrypt`` adds the free text (full level)."""
        if decrypt and self._keyring is None:
            raise StorageError("decrypting needs the keyring")
        where, params = _where(filters, only_active=only_active)
        after: tuple[str, str] | None = None
        while True:
            keyset = " AND (c.created_at, c.id) > (?, ?)" if after else ""
            rows = list(
                await self._conn.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM cases c WHERE {where}{keyset} "  # noqa: S608
                    "ORDER BY c.created_at, c.id LIMIT ?",
                    [*params, *(after or ()), batch_size],
                )
            )
            if not rows:
                return
            yield await self._build([tuple(row) for row in rows], decrypt)
            last = rows[-1]
            after = (str(last[1]), str(last[0]))

    async def _many(self, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """Run ``sql`` with every ``{ids}`` replaced by placeholders for ``ids`` (repeated as often)."""
        marks = ", ".join("?" * len(ids))
        params = list(ids) * sql.count("{ids}")
        return [tuple(row) for row in await self._conn.execute_fetchall(sql.format(ids=marks), params)]

    async def _build(self, rows: list[tuple[Any, ...]], decrypt: bool) -> list[ExportCase]:
        ids = [str(row[0]) for row in rows]
        conditions: dict[str, set[str]] = {}
        for case_id, condition in await self._many(
            "SELECT case_id, condition FROM case_conditions WHERE case_id IN ({ids})", ids
        ):
            conditions.setdefault(case_id, set()).add(condition)
        tags: dict[str, list[str]] = {}
        for case_id, tag in await self._many(
            "SELECT case_id, tag FROM case_tags WHERE case_id IN ({ids}) ORDER BY tag", ids
        ):
            tags.setdefault(case_id, []).append(tag)
        links: dict[str, set[str]] = {}
        for one, other in await self._many(
            "SELECT case_id, linked_case_id FROM case_links WHERE case_id IN ({ids}) "
            "UNION SELECT case_id, linked_case_id FROM case_links WHERE linked_case_id IN ({ids})",
            ids,
        ):
            links.setdefault(one, set()).add(other)
            links.setdefault(other, set()).add(one)
        media = dict(
            await self._many(
                "SELECT case_id, COUNT(*) FROM case_media WHERE case_id IN ({ids}) GROUP BY 1", ids
            )
        )
        additions = dict(
            await self._many(
                "SELECT case_id, COUNT(*) FROM case_additions WHERE case_id IN ({ids}) GROUP BY 1", ids
            )
        )
        secrets = await self._secrets(ids) if decrypt else {}

        built = []
        for row in rows:
            case_id = str(row[0])
            built.append(
                ExportCase(
                    case_id=case_id,
                    created_at=from_db_time(row[1]),
                    updated_at=from_db_time(row[2]),
                    status=CaseStatus(row[3]),
                    priority=Priority(row[4]),
                    reasons=tuple(json.loads(row[5])),
                    corroborating_cases=int(row[6]),
                    reporter_type=row[7],
                    immediate_danger=None if row[8] is None else bool(row[8]),
                    fast_track=bool(row[9]),
                    place_unknown=bool(row[10]),
                    country=row[11],
                    area_id=row[12],
                    passport=row[13],
                    phone=row[14],
                    people=row[15],
                    nationalities=tuple(json.loads(row[16])),
                    contact=row[17],
                    language=row[18],
                    victim_age_band=row[19],
                    victim_sex=row[20],
                    victim_nationality=row[21],
                    quarantined=bool(row[22]),
                    withdrawn_at=None if row[23] is None else from_db_time(row[23]),
                    closing_reason=row[24],
                    assignee=row[25],
                    conditions=frozenset(conditions.get(case_id, ())),
                    linked_case_ids=tuple(sorted(links.get(case_id, set()) - {case_id})),
                    tags=tuple(tags.get(case_id, ())),
                    media_count=int(media.get(case_id, 0)),
                    additions_count=int(additions.get(case_id, 0)),
                    secrets=secrets.get(case_id, ExportSecrets()) if decrypt else None,
                )
            )
        return built

    async def _secrets(self, ids: Sequence[str]) -> dict[str, ExportSecrets]:
        keyring = self._keyring
        if keyring is None:
            raise StorageError("decrypting needs the keyring")
        fields: dict[str, dict[str, str]] = {}
        for case_id, name, blob in await self._many(
            # The contact chat id (the way back to a reporter) is never read: it identifies the reporter.
            "SELECT case_id, field, ciphertext FROM case_secrets WHERE case_id IN ({ids}) "
            "AND field <> 'contact_chat_id'",
            ids,
        ):
            fields.setdefault(case_id, {})[name] = keyring.decrypt_text(
                blob, table="case_secrets", column=name, row_id=case_id
            )
        added: dict[str, list[str]] = {}
        for row_id, case_id, blob in await self._many(
            "SELECT id, case_id, ciphertext FROM case_additions WHERE case_id IN ({ids}) "
            "ORDER BY created_at, rowid",
            ids,
        ):
            added.setdefault(case_id, []).append(
                keyring.decrypt_text(blob, table="case_additions", column="text", row_id=row_id)
            )
        notes: dict[str, list[str]] = {}
        for row_id, case_id, blob in await self._many(
            "SELECT id, case_id, ciphertext FROM case_notes WHERE case_id IN ({ids}) "
            "ORDER BY created_at, rowid",
            ids,
        ):
            notes.setdefault(case_id, []).append(
                keyring.decrypt_text(blob, table="case_notes", column="text", row_id=row_id)
            )

        def number(value: str | None) -> float | None:
            return None if value is None else float(value)

        return {
            case_id: ExportSecrets(
                latitude=number(fields.get(case_id, {}).get("latitude")),
                longitude=number(fields.get(case_id, {}).get("longitude")),
                place_details=fields.get(case_id, {}).get("place_details"),
                details=fields.get(case_id, {}).get("details"),
                victim_name=fields.get(case_id, {}).get("victim_name"),
                victim_passport_number=fields.get(case_id, {}).get("victim_passport_number"),
                victim_handle=fields.get(case_id, {}).get("victim_handle"),
                victim_last_contact=fields.get(case_id, {}).get("victim_last_contact"),
                additions=tuple(added.get(case_id, ())),
                notes=tuple(notes.get(case_id, ())),
            )
            for case_id in ids
        }


async def record_export(
    conn: aiosqlite.Connection,
    *,
    actor_id: int | None,
    details: dict[str, AuditValue],
    at: datetime | None = None,
) -> None:
    """Write one export to the audit trail (``actor_id`` None: the command line)."""
    async with transaction(conn):
        await append_audit(
            conn,
            at=at or utc_now(),
            actor_id=actor_id,
            action=Action.EXPORT.value,
            case_id=None,
            details=details,
        )
