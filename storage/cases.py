"""The case repository: commit a triaged report in one transaction, read cases back, withdraw them.

Sensitive fields are encrypted here with the keyring (AES-GCM bound to table, column and row); what stays
in clear is codes, ranges and quasi-identifiers. Every write that coordinators must hear about adds an
outbox row in the same transaction, and records the Telegram update that caused it as processed.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

import aiosqlite

from bot.crypto import Keyring, normalise_receipt, verify_receipt
from bot.domain.models import (
    AgeBand,
    CaseStatus,
    CaseSummary,
    Condition,
    ContactPreference,
    PeopleCount,
    Place,
    Possession,
    Priority,
    Reason,
    Report,
    ReporterType,
    Sex,
    Triage,
    VictimDetails,
)
from bot.domain.records import CaseView, Media, MediaKind, NewCase, OutboxItem, OutboxKind
from storage.audit import append_audit
from storage.db import StorageError, transaction
from storage.timestamps import from_db_time, to_db_time, utc_now

__all__ = [
    "CASE_CREATED",
    "REPORTER_WITHDREW",
    "AlreadyProcessed",
    "CaseNotFound",
    "CaseStore",
    "CaseWithdrawn",
    "CaseWriteError",
    "DuplicateCaseId",
    "OutboxItemNotFound",
]

# Audit actions of reporters and the system (coordinators' actions are bot.domain.workflow.Action codes).
CASE_CREATED = "case_created"
REPORTER_WITHDREW = "reporter_withdrew"

# Approximate coordinates kept in clear for hotspot maps: 2 decimals is about 1.1 km of latitude.
APPROX_DECIMALS = 2
# A case view holds at most this many linked cases, the most recent (`CaseView.more_links` says if cut).
MAX_LINKS_SHOWN = 20


class AlreadyProcessed(StorageError):
    """The Telegram update was already handled (a redelivery); nothing was written."""


class DuplicateCaseId(StorageError):
    """A case with this id exists already (a random-id collision); draw a new id and try again."""


class CaseNotFound(StorageError):
    """No case has this id."""


class CaseWithdrawn(StorageError):
    """The case was withdrawn by its reporter; nothing more can be added to it."""


class OutboxItemNotFound(StorageError):
    """No outbox row has this id."""


class CaseWriteError(StorageError):
    """SQLite refused a write (e.g. a constraint); the whole transaction was rolled back."""


class _Secret(StrEnum):
    """Field names in ``case_secrets``; each ciphertext is bound to ('case_secrets', field, case id)."""

    LATITUDE = "latitude"
    LONGITUDE = "longitude"
    PLACE_DETAILS = "place_details"
    DETAILS = "details"
    VICTIM_NAME = "victim_name"
    VICTIM_PASSPORT_NUMBER = "victim_passport_number"
    VICTIM_HANDLE = "victim_handle"
    VICTIM_LAST_CONTACT = "victim_last_contact"
    CONTACT_CHAT_ID = "contact_chat_id"


# What a withdrawal erases: the reporter's own words and whatever identifies the victim or reaches the
# reporter. The exact point stays, like the case row: it says where people are held, not who told us.
_ERASED_ON_WITHDRAWAL = (
    _Secret.PLACE_DETAILS,
    _Secret.DETAILS,
    _Secret.VICTIM_NAME,
    _Secret.VICTIM_PASSPORT_NUMBER,
    _Secret.VICTIM_HANDLE,
    _Secret.VICTIM_LAST_CONTACT,
    _Secret.CONTACT_CHAT_ID,
)

# The case row's columns that hold the report's answers and its triage (see ``_answer_values``).
_ANSWER_COLUMNS = (
    "priority, reasons, score, corroborating_cases, rules_version, reporter_type, immediate_danger, "
    "fast_track, place_unknown, country, area_id, approx_latitude, approx_longitude, passport, phone, "
    "people, nationalities, contact, language, victim_age_band, victim_sex, victim_nationality"
)
_CASE_COLUMNS = f"id, created_at, updated_at, status, {_ANSWER_COLUMNS}, quarantined, withdrawn_at"

_INSERT_CASE = (
    f"INSERT INTO cases ({_CASE_COLUMNS}) "  # noqa: S608 (constants only)
    f"VALUES ({', '.join('?' * (_CASE_COLUMNS.count(',') + 1))})"
)
_UPDATE_ANSWERS = (
    "UPDATE cases SET "  # noqa: S608 (constants only)
    + ", ".join(f"{column.strip()} = ?" for column in _ANSWER_COLUMNS.split(","))
    + ", updated_at = ? WHERE id = ?"
)
# The case row, then the workflow's columns and the assignee's label (indexes 28-30).
_SELECT_CASE = (
    f"SELECT {_CASE_COLUMNS}, assignee_id, closing_reason, "  # noqa: S608 (constants only)
    "(SELECT label FROM staff WHERE staff.user_id = cases.assignee_id) FROM cases WHERE id = ?"
)
_ERASE_SECRETS = (
    "DELETE FROM case_secrets WHERE case_id = ? AND field IN "  # noqa: S608 (constants only)
    f"({', '.join(repr(field.value) for field in _ERASED_ON_WITHDRAWAL)})"
)
_SUMMARY_SECRETS = (
    "SELECT s.case_id, s.field, s.ciphertext FROM case_secrets s JOIN cases c ON c.id = s.case_id"
)
_SUMMARY_FIELDS = "s.field IN ('latitude', 'longitude', 'place_details')"
_POINT_FIELDS = "s.field IN ('latitude', 'longitude')"
_DETAILS_FIELDS = "s.field = 'place_details'"

# How far, in degrees of latitude, a case's rounded coordinates may lie from a new report's exact point and
# still be read for corroboration: the rounding (half of 0.01) plus about 1.6 km, well beyond the 300 m
# within which ``find_corroborating`` links two points. Longitude is widened by 1 / cos(latitude).
NEAR_DEGREES = 0.02


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _code(value: StrEnum | None) -> str | None:
    return None if value is None else value.value


def _answer_values(report: Report, triage: Triage) -> tuple[Any, ...]:
    """The values of ``_ANSWER_COLUMNS``, in order: codes, ranges and quasi-identifiers, no free text."""
    place, victim = report.place, report.victim
    return (
        int(triage.priority),
        json.dumps([reason.value for reason in triage.reasons]),
        triage.score,
        triage.corroborating_cases,
        triage.rules_version,
        _code(report.reporter_type),
        _bool(report.immediate_danger),
        int(report.fast_track),
        int(place.unknown),
        place.country,
        place.area_id,
        None if place.latitude is None else round(place.latitude, APPROX_DECIMALS),
        None if place.longitude is None else round(place.longitude, APPROX_DECIMALS),
        _code(report.passport),
        _code(report.phone),
        _code(report.people),
        json.dumps(list(report.nationalities)),
        _code(report.contact),
        report.language,
        _code(victim.age_band),
        _code(victim.sex),
        victim.nationality,
    )


def _secret_answers(report: Report) -> dict[_Secret, str]:
    """The report's sensitive answers as text, only those actually given (the chat id is not an answer)."""
    place, victim = report.place, report.victim
    answers = {
        _Secret.LATITUDE: None if place.latitude is None else repr(place.latitude),
        _Secret.LONGITUDE: None if place.longitude is None else repr(place.longitude),
        _Secret.PLACE_DETAILS: _present(place.details),
        _Secret.DETAILS: _present(report.details),
        _Secret.VICTIM_NAME: _present(victim.name),
        _Secret.VICTIM_PASSPORT_NUMBER: _present(victim.passport_number),
        _Secret.VICTIM_HANDLE: _present(victim.handle),
        _Secret.VICTIM_LAST_CONTACT: None if victim.last_contact is None else victim.last_contact.isoformat(),
    }
    return {field: text for field, text in answers.items() if text is not None}


def _present(text: str | None) -> str | None:
    """Treat a blank answer as no answer: only text with something in it is stored."""
    return text if text is not None and text.strip() else None


def _new_row_id() -> str:
    return secrets.token_hex(8)


_E = TypeVar("_E", bound=StrEnum)


def _enum_or_none(kind: type[_E], value: Any) -> _E | None:
    return None if value is None else kind(value)


class CaseStore:
    """Cases and everything hanging off them: conditions, secrets, media, additions, links, receipts.

    ``clock`` returns the current (timezone-aware) time; tests pass a fixed one. Reads raise
    ``bot.crypto.DecryptionError`` if a ciphertext does not open (wrong secret, tampering): loudly, never
    as a missing value.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._conn = conn
        self._keyring = keyring
        self._clock = clock

    # --- writes --------------------------------------------------------------------------------------

    async def create_case(self, new: NewCase) -> None:
        """Commit a triaged report and everything that goes with it, in one transaction.

        Writes the case, its conditions, its non-empty sensitive fields (encrypted), media (encrypted),
        links to the earlier cases in ``new.linked_case_ids`` that still exist, the reporter link, the
        receipt, a rate-limit event, an outbox row NEW_CASE, an audit entry ``case_created`` (no actor, no
        content) and ``new.update_id`` as processed. The chat id is stored only when the reporter did not
        refuse contact.

        Raises ``AlreadyProcessed`` if the update was handled before, ``DuplicateCaseId`` if the id is
        taken, ``CaseWriteError`` if SQLite refuses a row (e.g. a receipt lookup already in use). In every
        case nothing is written.
        """
        report = new.report
        created = to_db_time(new.created_at)
        secret_answers = _secret_answers(report)
        if new.contact_chat_id is not None and report.contact is not ContactPreference.NO:
            secret_answers[_Secret.CONTACT_CHAT_ID] = str(new.contact_chat_id)
        secret_rows = self._secret_rows(new.case_id, secret_answers)
        media_rows = self._media_rows(new.case_id, new.media, created)
        case_row = (
            new.case_id,
            created,
            created,
            CaseStatus.NEW.value,
            *_answer_values(report, new.triage),
            int(new.quarantined),
            None,
        )

        conn = self._conn
        try:
            async with transaction(conn):
                await self._claim_update(new.update_id)
                if await conn.execute_fetchall("SELECT 1 FROM cases WHERE id = ?", (new.case_id,)):
                    raise DuplicateCaseId(f"case id {new.case_id} is taken")
                await conn.execute(_INSERT_CASE, case_row)
                await conn.executemany(
                    "INSERT INTO case_conditions (case_id, condition) VALUES (?, ?)",
                    [(new.case_id, condition.value) for condition in sorted(report.conditions)],
                )
                await conn.executemany(
                    "INSERT INTO case_secrets (case_id, field, ciphertext) VALUES (?, ?, ?)", secret_rows
                )
                await self._insert_media(media_rows)
                await self._link(new.case_id, new.linked_case_ids)
                await conn.execute(
                    "INSERT INTO reporter_links (pseudonym, case_id, created_at) VALUES (?, ?, ?)",
                    (new.reporter_pseudonym, new.case_id, created),
                )
                await conn.execute(
                    "INSERT INTO receipts (case_id, lookup, hash) VALUES (?, ?, ?)",
                    (new.case_id, new.receipt_lookup, new.receipt_hash),
                )
                await conn.execute(
                    "INSERT INTO rate_events (pseudonym, created_at) VALUES (?, ?)",
                    (new.reporter_pseudonym, created),
                )
                await self._enqueue(new.case_id, OutboxKind.NEW_CASE, new.triage.priority)
                await append_audit(
                    conn,
                    at=self._clock(),
                    actor_id=None,
                    action=CASE_CREATED,
                    case_id=new.case_id,
                    details={"priority": int(new.triage.priority), "quarantined": new.quarantined},
                )
                await self._record_update(new.update_id)
        except aiosqlite.Error as exc:
            raise CaseWriteError(f"case {new.case_id} was not saved: {exc}") from exc

    async def add_information(
        self, case_id: str, text: str | None, media: Sequence[Media], update_id: int | None
    ) -> None:
        """Append a text and/or media to a case (``/add``) and an outbox row CASE_UPDATE, in one transaction.

        Raises ``ValueError`` if there is nothing to add, ``CaseNotFound``, ``CaseWithdrawn``,
        ``AlreadyProcessed`` (nothing written) or ``CaseWriteError``.
        """
        text = _present(text)
        if text is None and not media:
            raise ValueError("nothing to add: no text and no media")
        now = to_db_time(self._clock())
        addition_id = _new_row_id()
        addition = (
            None
            if text is None
            else self._keyring.encrypt_text(text, table="case_additions", column="text", row_id=addition_id)
        )
        media_rows = self._media_rows(case_id, media, now)

        conn = self._conn
        try:
            async with transaction(conn):
                await self._claim_update(update_id)
                priority, withdrawn_at, _ = await self._case_state(case_id)
                if withdrawn_at is not None:
                    raise CaseWithdrawn(f"case {case_id} was withdrawn")
                if addition is not None:
                    await conn.execute(
                        "INSERT INTO case_additions (id, case_id, created_at, ciphertext) "
                        "VALUES (?, ?, ?, ?)",
                        (addition_id, case_id, now, addition),
                    )
                await self._insert_media(media_rows)
                await conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
                await self._enqueue(case_id, OutboxKind.CASE_UPDATE, priority)
                await self._record_update(update_id)
        except aiosqlite.Error as exc:
            raise CaseWriteError(f"information for case {case_id} was not saved: {exc}") from exc

    async def amend_case(
        self,
        case_id: str,
        report: Report,
        triage: Triage,
        linked_case_ids: Sequence[str],
        media: Sequence[Media],
        update_id: int | None,
    ) -> None:
        """Replace a case's answers with a fuller ``report`` and its new triage, in one transaction.

        Used after the danger fast track: the reporter answers the rest and the case is re-triaged.
        Conditions and sensitive fields are replaced by the new report's; the chat id is kept unless
        the new report refuses contact, in which case it is erased. New links (to cases that still
        exist) and ``media`` are added; creation time, status, quarantine and the reporter link stay, and
        so does a priority a coordinator overrode. Adds an outbox row CASE_UPDATE at the case's priority.
        Raises ``CaseNotFound``, ``CaseWithdrawn``, ``AlreadyProcessed`` (nothing written) or
        ``CaseWriteError``.
        """
        now = to_db_time(self._clock())
        secret_rows = self._secret_rows(case_id, _secret_answers(report))
        media_rows = self._media_rows(case_id, media, now)
        conn = self._conn
        try:
            async with transaction(conn):
                await self._claim_update(update_id)
                current_priority, withdrawn_at, _ = await self._case_state(case_id)
                if withdrawn_at is not None:
                    raise CaseWithdrawn(f"case {case_id} was withdrawn")
                await conn.execute(_UPDATE_ANSWERS, (*_answer_values(report, triage), now, case_id))
                # A coordinator's priority override outranks re-triage: put it back.
                async with conn.execute(
                    "UPDATE cases SET priority = ? WHERE id = ? AND priority_overridden = 1",
                    (int(current_priority), case_id),
                ) as cursor:
                    priority = current_priority if cursor.rowcount else triage.priority
                await conn.execute("DELETE FROM case_conditions WHERE case_id = ?", (case_id,))
                await conn.executemany(
                    "INSERT INTO case_conditions (case_id, condition) VALUES (?, ?)",
                    [(case_id, condition.value) for condition in sorted(report.conditions)],
                )
                if report.contact is ContactPreference.NO:
                    await conn.execute("DELETE FROM case_secrets WHERE case_id = ?", (case_id,))
                else:
                    await conn.execute(
                        "DELETE FROM case_secrets WHERE case_id = ? AND field <> ?",
                        (case_id, _Secret.CONTACT_CHAT_ID.value),
                    )
                await conn.executemany(
                    "INSERT INTO case_secrets (case_id, field, ciphertext) VALUES (?, ?, ?)", secret_rows
                )
                await self._link(case_id, linked_case_ids)
                await self._insert_media(media_rows)
                await self._enqueue(case_id, OutboxKind.CASE_UPDATE, priority)
                await self._record_update(update_id)
        except aiosqlite.Error as exc:
            raise CaseWriteError(f"case {case_id} was not amended: {exc}") from exc

    async def withdraw(self, case_id: str, update_id: int | None) -> None:
        """Withdraw a case at its reporter's request (``/delete``), in one transaction.

        Unlinks the reporter (reporter links, receipt, the matching rate event), erases the free text
        (details, place details, additions), the victim's identifying fields, the media and the chat id,
        sets ``withdrawn_at``, and adds an outbox row WITHDRAWN and an audit entry ``reporter_withdrew``.
        The case row, its conditions, priority and coordinates stay: a captor may force a withdrawal, so
        coordinators still see the case, flagged.
        Withdrawing twice changes nothing more. Raises ``CaseNotFound``, ``AlreadyProcessed`` (nothing
        written) or ``CaseWriteError``.
        """
        conn = self._conn
        now = to_db_time(self._clock())
        try:
            async with transaction(conn):
                await self._claim_update(update_id)
                priority, withdrawn_at, created_at = await self._case_state(case_id)
                if withdrawn_at is None:
                    # The rate event carries the reporter's pseudonym and the case's exact time: together
                    # they would re-link the reporter to the case, so it goes with the link.
                    await conn.execute(
                        "DELETE FROM rate_events WHERE created_at = ? AND pseudonym IN "
                        "(SELECT pseudonym FROM reporter_links WHERE case_id = ?)",
                        (created_at, case_id),
                    )
                    await conn.execute("DELETE FROM reporter_links WHERE case_id = ?", (case_id,))
                    await conn.execute("DELETE FROM receipts WHERE case_id = ?", (case_id,))
                    await conn.execute(_ERASE_SECRETS, (case_id,))
                    await conn.execute("DELETE FROM case_additions WHERE case_id = ?", (case_id,))
                    await conn.execute("DELETE FROM case_media WHERE case_id = ?", (case_id,))
                    await conn.execute(
                        "UPDATE cases SET withdrawn_at = ?, updated_at = ? WHERE id = ?", (now, now, case_id)
                    )
                    await self._enqueue(case_id, OutboxKind.WITHDRAWN, priority)
                    await append_audit(
                        conn,
                        at=self._clock(),
                        actor_id=None,
                        action=REPORTER_WITHDREW,
                        case_id=case_id,
                        details={},
                    )
                await self._record_update(update_id)
        except aiosqlite.Error as exc:
            raise CaseWriteError(f"case {case_id} was not withdrawn: {exc}") from exc

    async def mark_sent(self, outbox_id: int) -> None:
        """Record that an outbox message reached the coordinators (the first time counts).

        Raises ``OutboxItemNotFound``.
        """
        now = to_db_time(self._clock())
        async with (
            transaction(self._conn),
            self._conn.execute(
                "UPDATE outbox SET sent_at = COALESCE(sent_at, ?) WHERE id = ?", (now, outbox_id)
            ) as cursor,
        ):
            if cursor.rowcount == 0:
                raise OutboxItemNotFound(f"no outbox item {outbox_id}")

    async def prune_rate_events(self, before: datetime) -> int:
        """Delete rate-limit events older than ``before`` (they are only needed for the limit's window)."""
        async with (
            transaction(self._conn),
            self._conn.execute(
                "DELETE FROM rate_events WHERE created_at < ?", (to_db_time(before),)
            ) as cursor,
        ):
            return cursor.rowcount

    # --- reads ---------------------------------------------------------------------------------------

    async def is_processed(self, update_id: int) -> bool:
        """Tell whether the Telegram update ``update_id`` was already handled."""
        rows = await self._conn.execute_fetchall(
            "SELECT 1 FROM processed_updates WHERE update_id = ?", (update_id,)
        )
        return bool(rows)

    async def get_case(self, case_id: str) -> CaseView | None:
        """Return the case with its report rebuilt and decrypted, or ``None`` if there is none."""
        conn = self._conn
        rows = list(await conn.execute_fetchall(_SELECT_CASE, (case_id,)))
        if not rows:
            return None
        row = rows[0]
        conditions = frozenset(
            Condition(r[0])
            for r in await conn.execute_fetchall(
                "SELECT condition FROM case_conditions WHERE case_id = ?", (case_id,)
            )
        )
        secret = await self._open_secrets(case_id)
        # Linked both ways; in a surge about one compound an early case is linked from every later one, so
        # only the most recent are read (a ticket must stay within Telegram's 4,096 characters).
        links = list(
            await conn.execute_fetchall(
                "SELECT other FROM (SELECT linked_case_id AS other FROM case_links WHERE case_id = ? "
                "UNION SELECT case_id FROM case_links WHERE linked_case_id = ?) "
                "JOIN cases ON cases.id = other ORDER BY cases.created_at DESC, other DESC LIMIT ?",
                (case_id, case_id, MAX_LINKS_SHOWN + 1),
            )
        )
        additions = tuple(
            self._keyring.decrypt_text(r[1], table="case_additions", column="text", row_id=r[0])
            for r in await conn.execute_fetchall(
                "SELECT id, ciphertext FROM case_additions WHERE case_id = ? ORDER BY created_at, rowid",
                (case_id,),
            )
        )
        media_count = next(
            iter(await conn.execute_fetchall("SELECT COUNT(*) FROM case_media WHERE case_id = ?", (case_id,)))
        )[0]
        tags = tuple(
            r[0]
            for r in await conn.execute_fetchall(
                "SELECT tag FROM case_tags WHERE case_id = ? ORDER BY tag", (case_id,)
            )
        )

        last_contact = secret.get(_Secret.VICTIM_LAST_CONTACT)
        report = Report(
            reporter_type=_enum_or_none(ReporterType, row[9]),
            immediate_danger=None if row[10] is None else bool(row[10]),
            fast_track=bool(row[11]),
            place=Place(
                latitude=_float_or_none(secret.get(_Secret.LATITUDE)),
                longitude=_float_or_none(secret.get(_Secret.LONGITUDE)),
                country=row[13],
                area_id=row[14],
                details=secret.get(_Secret.PLACE_DETAILS),
                unknown=bool(row[12]),
            ),
            passport=_enum_or_none(Possession, row[17]),
            phone=_enum_or_none(Possession, row[18]),
            conditions=conditions,
            people=_enum_or_none(PeopleCount, row[19]),
            nationalities=tuple(json.loads(row[20])),
            details=secret.get(_Secret.DETAILS),
            contact=_enum_or_none(ContactPreference, row[21]),
            victim=VictimDetails(
                name=secret.get(_Secret.VICTIM_NAME),
                age_band=_enum_or_none(AgeBand, row[23]),
                sex=_enum_or_none(Sex, row[24]),
                nationality=row[25],
                passport_number=secret.get(_Secret.VICTIM_PASSPORT_NUMBER),
                handle=secret.get(_Secret.VICTIM_HANDLE),
                last_contact=None if last_contact is None else date.fromisoformat(last_contact),
            ),
            language=row[22],
        )
        chat_id = secret.get(_Secret.CONTACT_CHAT_ID)
        return CaseView(
            case_id=row[0],
            created_at=from_db_time(row[1]),
            status=CaseStatus(row[3]),
            priority=Priority(row[4]),
            reasons=tuple(Reason(code) for code in json.loads(row[5])),
            report=report,
            withdrawn=row[27] is not None,
            quarantined=bool(row[26]),
            linked_case_ids=tuple(sorted(r[0] for r in links[:MAX_LINKS_SHOWN])),
            more_links=len(links) > MAX_LINKS_SHOWN,
            additions=additions,
            media_count=int(media_count),
            contact_chat_id=None if chat_id is None else int(chat_id),
            assignee_id=row[28],
            assignee_label=row[30],
            closing_reason=row[29],
            tags=tags,
        )

    async def media(self, case_id: str) -> list[Media]:
        """Return a case's media, decrypted, oldest first (empty if none, or if the case is unknown)."""
        rows = await self._conn.execute_fetchall(
            "SELECT id, kind, mime_type, ciphertext FROM case_media WHERE case_id = ? "
            "ORDER BY created_at, rowid",
            (case_id,),
        )
        return [
            Media(
                kind=MediaKind(row[1]),
                mime_type=row[2],
                content=self._keyring.decrypt(row[3], table="case_media", column="content", row_id=row[0]),
            )
            for row in rows
        ]

    async def recent_summaries(self, since: datetime, place: Place | None = None) -> list[CaseSummary]:
        """Return summaries of cases created at or after ``since``, oldest first, for corroboration.

        Withdrawn cases are included (a withdrawal may be forced); quarantined ones are not. Exact
        coordinates and place details are decrypted; place details are gone from withdrawn cases.

        With ``place`` (the new report's), only what could corroborate it is read and decrypted: the exact
        points of the cases whose rounded coordinates lie within ``NEAR_DEGREES`` of its exact point, if
        it has one, and the place details of the cases in its gazetteer area, if it also describes the
        place. ``find_corroborating`` compares nothing else, so it links the same cases as without
        ``place``, but a busy window is not decrypted case by case.
        """
        window = "c.created_at >= ? AND c.quarantined = 0"
        since_text = to_db_time(since)
        parts: list[tuple[str, list[Any], str]]
        if place is None:
            parts = [("", [], _SUMMARY_FIELDS)]
        else:
            parts = _corroboration_parts(place)
            if not parts:
                return []
        conn = self._conn
        condition = " OR ".join(f"({part})" for part, _params, _fields in parts if part)
        condition = f"{window} AND ({condition})" if condition else window
        params = [since_text, *(value for _part, values, _fields in parts for value in values)]
        cases = await conn.execute_fetchall(
            f"SELECT c.id, c.created_at, c.area_id FROM cases c WHERE {condition} "  # noqa: S608 (constants only)
            "ORDER BY c.created_at, c.id",
            params,
        )
        opened: dict[str, dict[_Secret, str]] = {}
        for part, values, fields in parts:
            rows = await conn.execute_fetchall(
                f"{_SUMMARY_SECRETS} WHERE {window} AND {fields}" + (f" AND {part}" if part else ""),
                [since_text, *values],
            )
            for case_id, field_name, ciphertext in rows:
                field = _Secret(field_name)
                opened.setdefault(case_id, {})[field] = self._open_secret(case_id, field, ciphertext)
        summaries = []
        for case_id, created_at, area_id in cases:
            secret = opened.get(case_id, {})
            summaries.append(
                CaseSummary(
                    case_id=case_id,
                    created_at=from_db_time(created_at),
                    latitude=_float_or_none(secret.get(_Secret.LATITUDE)),
                    longitude=_float_or_none(secret.get(_Secret.LONGITUDE)),
                    area_id=area_id,
                    place_details=secret.get(_Secret.PLACE_DETAILS),
                )
            )
        return summaries

    async def reports_since(self, pseudonym: str, since: datetime) -> int:
        """Count the reports this reporter filed at or after ``since`` (for the per-reporter rate limit)."""
        rows = await self._conn.execute_fetchall(
            "SELECT COUNT(*) FROM rate_events WHERE pseudonym = ? AND created_at >= ?",
            (pseudonym, to_db_time(since)),
        )
        return int(next(iter(rows))[0])

    async def cases_of(self, pseudonym: str) -> list[str]:
        """Return the ids of the cases this reporter filed and has not withdrawn, newest first.

        After a key rotation, ask with each of ``Keyring.pseudonyms(user_id)``.
        """
        rows = await self._conn.execute_fetchall(
            "SELECT r.case_id FROM reporter_links r JOIN cases c ON c.id = r.case_id "
            "WHERE r.pseudonym = ? ORDER BY c.created_at DESC, c.id DESC",
            (pseudonym,),
        )
        return [row[0] for row in rows]

    async def case_by_receipt(self, code: str) -> str | None:
        """Return the id of the case whose receipt code is ``code`` (as typed), or ``None``.

        Finds the row by keyed lookup (under every root of the keyring), then verifies the slow hash off
        the event loop. ``None`` if the code is malformed, unknown, withdrawn, or does not verify.
        """
        digits = normalise_receipt(code)
        if digits is None:
            return None
        rows: list[Any] = []
        for lookup in self._keyring.receipt_lookups(digits):
            rows.extend(
                await self._conn.execute_fetchall(
                    "SELECT case_id, hash FROM receipts WHERE lookup = ?", (lookup,)
                )
            )
        for case_id, stored in rows:
            if await asyncio.to_thread(verify_receipt, digits, stored):
                return str(case_id)
        return None

    async def contact_chat_id(self, case_id: str) -> int | None:
        """Return the chat id the team may write to about this case, or ``None`` if contact is not allowed."""
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT ciphertext FROM case_secrets WHERE case_id = ? AND field = ?",
                (case_id, _Secret.CONTACT_CHAT_ID.value),
            )
        )
        if not rows:
            return None
        return int(self._open_secret(case_id, _Secret.CONTACT_CHAT_ID, rows[0][0]))

    async def pending_outbox(self, limit: int, *, now: datetime | None = None) -> list[OutboxItem]:
        """Return up to ``limit`` unsent, live outbox items, most urgent first, then oldest first.

        With ``now``, items whose ``next_attempt_at`` is later are left out (they are backing off).
        """
        sql = (
            "SELECT id, case_id, kind, priority, created_at, attempts, sent_at FROM outbox "
            "WHERE sent_at IS NULL AND dead_at IS NULL"
        )
        params: list[Any] = []
        if now is not None:
            sql += " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            params.append(to_db_time(now))
        sql += " ORDER BY priority, id LIMIT ?"
        params.append(limit)
        rows = await self._conn.execute_fetchall(sql, params)
        return [
            OutboxItem(
                id=row[0],
                case_id=row[1],
                kind=OutboxKind(row[2]),
                priority=Priority(row[3]),
                created_at=from_db_time(row[4]),
                attempts=row[5],
                sent_at=None if row[6] is None else from_db_time(row[6]),
            )
            for row in rows
        ]

    # --- helpers -------------------------------------------------------------------------------------

    def _secret_rows(self, case_id: str, answers: dict[_Secret, str]) -> list[tuple[str, str, bytes]]:
        return [
            (
                case_id,
                field.value,
                self._keyring.encrypt_text(text, table="case_secrets", column=field.value, row_id=case_id),
            )
            for field, text in answers.items()
        ]

    def _open_secret(self, case_id: str, field: _Secret, ciphertext: bytes) -> str:
        return self._keyring.decrypt_text(
            ciphertext, table="case_secrets", column=field.value, row_id=case_id
        )

    async def _open_secrets(self, case_id: str) -> dict[_Secret, str]:
        rows = await self._conn.execute_fetchall(
            "SELECT field, ciphertext FROM case_secrets WHERE case_id = ?", (case_id,)
        )
        return {_Secret(field): self._open_secret(case_id, _Secret(field), blob) for field, blob in rows}

    def _media_rows(
        self, case_id: str, media: Iterable[Media], created: str
    ) -> list[tuple[str, str, str, str, str, bytes]]:
        rows = []
        for item in media:
            media_id = _new_row_id()
            sealed = self._keyring.encrypt(
                item.content, table="case_media", column="content", row_id=media_id
            )
            rows.append((media_id, case_id, item.kind.value, item.mime_type, created, sealed))
        return rows

    async def _link(self, case_id: str, linked_case_ids: Iterable[str]) -> None:
        # A linked case purged meanwhile (retention) must not cost us this report: skip it.
        await self._conn.executemany(
            "INSERT OR IGNORE INTO case_links (case_id, linked_case_id) SELECT ?, id FROM cases WHERE id = ?",
            [(case_id, linked) for linked in dict.fromkeys(linked_case_ids) if linked != case_id],
        )

    async def _insert_media(self, rows: list[tuple[str, str, str, str, str, bytes]]) -> None:
        await self._conn.executemany(
            "INSERT INTO case_media (id, case_id, kind, mime_type, created_at, ciphertext) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    async def _case_state(self, case_id: str) -> tuple[Priority, str | None, str]:
        """Return (priority, withdrawn_at, created_at) of a case; raise ``CaseNotFound`` if there is none."""
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT priority, withdrawn_at, created_at FROM cases WHERE id = ?", (case_id,)
            )
        )
        if not rows:
            raise CaseNotFound(f"no case {case_id}")
        return Priority(rows[0][0]), rows[0][1], rows[0][2]

    async def _claim_update(self, update_id: int | None) -> None:
        """Raise ``AlreadyProcessed`` if the update was handled (checked inside the write lock)."""
        if update_id is not None and await self.is_processed(update_id):
            raise AlreadyProcessed(f"update {update_id} was already processed")

    async def _record_update(self, update_id: int | None) -> None:
        if update_id is not None:
            await self._conn.execute(
                "INSERT INTO processed_updates (update_id, processed_at) VALUES (?, ?)",
                (update_id, to_db_time(self._clock())),
            )

    async def _enqueue(self, case_id: str, kind: OutboxKind, priority: Priority) -> None:
        await self._conn.execute(
            "INSERT INTO outbox (case_id, kind, priority, created_at) VALUES (?, ?, ?, ?)",
            (case_id, kind.value, int(priority), to_db_time(self._clock())),
        )


def _corroboration_parts(place: Place) -> list[tuple[str, list[Any], str]]:
    """What corroboration must read for a report at ``place``: (condition on cases ``c``, its parameters,
    the secret fields to decrypt) for the cases near its exact point and for those in its area when it
    describes the place; empty if neither could match (no point, and no area with a description)."""
    parts: list[tuple[str, list[Any], str]] = []
    if place.latitude is not None and place.longitude is not None:
        near = "c.approx_latitude BETWEEN ? AND ?"
        values: list[Any] = [place.latitude - NEAR_DEGREES, place.latitude + NEAR_DEGREES]
        cosine = math.cos(math.radians(place.latitude))
        margin = NEAR_DEGREES / cosine if cosine > 0.05 else 180.0
        if place.longitude - margin >= -180.0 and place.longitude + margin <= 180.0:
            near += " AND c.approx_longitude BETWEEN ? AND ?"
            values += [place.longitude - margin, place.longitude + margin]
        parts.append((near, values, _POINT_FIELDS))
    if place.area_id is not None and place.details is not None:
        parts.append(("c.area_id = ?", [place.area_id], _DETAILS_FIELDS))
    return parts


def _float_or_none(text: str | None) -> float | None:
    return None if text is None else float(text)
