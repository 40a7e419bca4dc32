"""How storage writes times: ISO 8601 in UTC with microseconds, so that text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_db_time", "to_db_time", "utc_now"]


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC (the default clock of the stores)."""
    return datetime.now(UTC)


def to_db_time(moment: datetime) -> str:
    """Return ``moment`` as stored, e.g. ``2026-01-02T03:04:05.000000+00:00``.

    Raises ``ValueError`` for a naive datetime: its instant is ambiguous, and rows compare times as text.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("storage needs a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str) -> datetime:
    """Read a time written by ``to_db_time`` (timezone-aware, UTC)."""
    return datetime.fromisoformat(text).astimezone(UTC)
