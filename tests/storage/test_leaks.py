"""No identity or free text in clear on disk: the database file and its WAL, grepped byte by byte."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from bot.domain.records import Media, MediaKind
from storage.cases import CaseStore
from storage.conversations import ConversationStore
from tests.storage.factories import NOW, USER_ID, make_case, rich_report

MARKER = "QZXV7MARKER"
UPDATE_ID = 880_011_223


def forbidden_needles() -> dict[str, bytes]:
    """Everything that must never be on disk in clear: the marker, the user (= chat) id in several forms."""
    return {
        "marker (UTF-8)": MARKER.encode("utf-8"),
        "marker (UTF-16)": MARKER.encode("utf-16-le"),
        "user id (decimal text)": str(USER_ID).encode("ascii"),
        "user id (int64 big-endian)": USER_ID.to_bytes(8, "big"),
        "user id (int64 little-endian)": USER_ID.to_bytes(8, "little"),
    }


def leaks(db_path: Path) -> list[str]:
    """Return (file, needle) descriptions for every forbidden needle found in the database's files."""
    found = []
    for suffix in ("", "-wal", "-journal"):
        path = db_path.with_name(db_path.name + suffix)
        if not path.exists():
            continue
        raw = path.read_bytes()
        found += [f"{path.name}: {name}" for name, needle in forbidden_needles().items() if needle in raw]
    return found


async def checkpoint(conn: aiosqlite.Connection) -> None:
    rows = await conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    assert next(iter(rows))[0] == 0, "checkpoint was blocked"


async def test_a_report_and_its_withdrawal_leave_no_marker_or_user_id_on_disk(conn, keyring, tmp_path):
    """Before and after /delete and a WAL checkpoint, neither file holds the marker or the id in clear."""
    store = CaseStore(conn, keyring)
    media = (Media(kind=MediaKind.PHOTO, content=f"jpeg {MARKER}".encode(), mime_type="image/jpeg"),)
    new, _ = make_case(keyring, report=rich_report(MARKER), media=media, update_id=UPDATE_ID)
    await store.create_case(new)
    await store.add_information(new.case_id, f"{MARKER} more", [], update_id=None)
    db_path = tmp_path / "beacon.db"
    assert leaks(db_path) == []

    await store.withdraw(new.case_id, update_id=None)
    await checkpoint(conn)
    assert leaks(db_path) == []
    assert db_path.with_name("beacon.db-wal").stat().st_size == 0


async def test_planted_text_in_clear_would_be_found_by_the_leak_check(conn, tmp_path):
    """The check itself works: a marker written in clear is seen in the files."""
    await conn.execute("CREATE TABLE probe (x TEXT)")
    await conn.execute("INSERT INTO probe VALUES (?)", (f"{MARKER} {USER_ID}",))
    assert set(leaks(tmp_path / "beacon.db")) >= {
        "beacon.db-wal: marker (UTF-8)",
        "beacon.db-wal: user id (decimal text)",
    }
    await checkpoint(conn)
    assert "beacon.db: marker (UTF-8)" in leaks(tmp_path / "beacon.db")


async def test_conversation_state_and_user_data_leave_no_user_id_on_disk(conn, keyring, tmp_path):
    """Keys holding chat and user ids, and the draft in user data, are on disk only encrypted."""
    store = ConversationStore(conn, keyring)
    await store.save_conversation("intake", (USER_ID, USER_ID), 4, NOW)
    await store.save_user_data(USER_ID, {"draft": {"details": MARKER}, "chat": USER_ID}, NOW)
    assert leaks(tmp_path / "beacon.db") == []
    await checkpoint(conn)
    assert leaks(tmp_path / "beacon.db") == []
