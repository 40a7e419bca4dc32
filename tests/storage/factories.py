"""Test data for storage tests: roots, a hand-moved clock, a rich report and the NewCase built from it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import aiosqlite

from bot.crypto import Keyring, hash_receipt, new_case_id, new_receipt_code
from bot.domain.models import (
    AgeBand,
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
from bot.domain.records import Media, MediaKind, NewCase

ROOT = bytes(range(32))
OTHER_ROOT = bytes(range(100, 132))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# A realistic Telegram user id; in a private chat the chat id is the same number.
USER_ID = 7_123_456_789


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rich_report(marker: str = "MARKER") -> Report:
    """A report with every field answered; ``marker`` is planted in each free-text field."""
    return Report(
        reporter_type=ReporterType.RELATIVE,
        immediate_danger=True,
        place=Place(
            latitude=10.627543,
            longitude=103.522016,
            country="KH",
            area_id="kh-preah-sihanouk",
            details=f"{marker}-place Golden Fortune compound, building B, floor 5, room 512",
        ),
        passport=Possession.TAKEN,
        phone=Possession.KEPT,
        conditions=frozenset({Condition.LOCKED_IN, Condition.VIOLENCE, Condition.FORCED_SCAMMING}),
        people=PeopleCount.MANY,
        nationalities=("VN", "CN", "ID"),
        details=f"{marker}-details They beat him with a stick. Anh ấy bị đánh. 他们打了他。",
        contact=ContactPreference.YES,
        victim=VictimDetails(
            name=f"{marker}-name Nguyễn Văn An",
            age_band=AgeBand.FROM_25_TO_34,
            sex=Sex.MALE,
            nationality="VN",
            passport_number=f"{marker}PP12345",
            handle=f"@{marker}_handle",
            last_contact=date(2026, 2, 20),
        ),
        language="vi",
        fast_track=False,
    )


def make_case(
    keyring: Keyring,
    *,
    report: Report | None = None,
    case_id: str | None = None,
    user_id: int = USER_ID,
    update_id: int | None = None,
    linked: tuple[str, ...] = (),
    media: tuple[Media, ...] = (),
    created_at: datetime = NOW,
    priority: Priority = Priority.P1,
    receipt: str | None = None,
    quarantined: bool = False,
    chat_id: int | None = USER_ID,
) -> tuple[NewCase, str]:
    """Return a NewCase as the intake service would build it, and its receipt code."""
    receipt = receipt or new_receipt_code()
    new = NewCase(
        case_id=case_id or new_case_id(),
        created_at=created_at,
        report=report or rich_report(),
        triage=Triage(
            priority=priority,
            reasons=(Reason.IMMEDIATE_DANGER, Reason.VIOLENCE, Reason.CONFINEMENT),
            score=120,
            corroborating_cases=len(linked),
            rules_version="test-1",
        ),
        linked_case_ids=linked,
        reporter_pseudonym=keyring.pseudonym(user_id),
        receipt_lookup=keyring.receipt_lookup(receipt),
        receipt_hash=hash_receipt(receipt),
        contact_chat_id=chat_id,
        media=media,
        quarantined=quarantined,
        update_id=update_id,
    )
    return new, receipt


def photo(content: bytes = b"\xff\xd8\xff\xe0 sanitised jpeg MARKER-photo") -> Media:
    return Media(kind=MediaKind.PHOTO, content=content, mime_type="image/jpeg")


async def row_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """Rows in every table (to prove a failed write left nothing behind)."""
    tables = await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    counts = {}
    for (table,) in tables:
        rows = await conn.execute_fetchall(f'SELECT COUNT(*) FROM "{table}"')
        counts[table] = next(iter(rows))[0]
    return counts


def tamper_audit(db_path: Path, entry_id: int, *, details: str | None = None, delete: bool = False) -> None:
    """Edit (or delete) an audit entry the way an intruder with file access would: from a second, raw
    connection that drops the append-only triggers, changes the row, and puts the triggers back."""
    with closing(sqlite3.connect(db_path)) as raw:
        triggers = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).fetchall()
        assert len(triggers) == 2
        for name, _ in triggers:
            raw.execute(f'DROP TRIGGER "{name}"')
        if delete:
            raw.execute("DELETE FROM audit_log WHERE id = ?", (entry_id,))
        else:
            raw.execute("UPDATE audit_log SET details = ? WHERE id = ?", (details, entry_id))
        for _, sql in triggers:
            raw.execute(sql)
        raw.commit()
