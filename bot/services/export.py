"""Case exports: stream the cases a level may see, in a format, into a sink; check roles; audit.

``write_export`` is the one pipeline both the command line (``beacon export``) and the bot (``/export``)
use: read a snapshot in batches, generalise and suppress for the public level, format, write. The bot's
``ExportService`` adds the role check, the encryption rule for the full level, a size cap (Telegram's
upload limit) and the audit entry.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Protocol

from bot.domain.export import (
    DEFAULT_K,
    DEFAULT_MAX_SUPPRESSION,
    AnonymityPlan,
    ExportCase,
    ExportFilters,
    ExportFormat,
    ExportLevel,
    QuasiKey,
    columns_for,
    may_export,
    plan_anonymity,
    row_values,
)
from bot.domain.workflow import Role
from bot.services.export_formats import AreaInfo, ExportSummary, make_writer
from bot.services.export_sinks import AgeEncryptor, CappedBuffer, ExportError, Recipient

__all__ = [
    "TELEGRAM_UPLOAD_LIMIT",
    "ExportFile",
    "ExportRequest",
    "ExportService",
    "ExportSource",
    "NeedsEncryption",
    "audit_details",
    "export_filename",
    "write_export",
]

TELEGRAM_UPLOAD_LIMIT = 50_000_000  # bytes a bot may upload as a document


class ExportSource(Protocol):
    """A snapshot of the cases (storage.export.ExportReader)."""

    async def count(self, filters: ExportFilters, *, only_active: bool) -> int: ...

    async def quasi_identifier_counts(self, filters: ExportFilters) -> Counter[QuasiKey]: ...

    def cases(
        self, filters: ExportFilters, *, only_active: bool, decrypt: bool = False, batch_size: int = ...
    ) -> AsyncIterator[list[ExportCase]]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ExportRequest:
    level: ExportLevel
    format: ExportFormat
    filters: ExportFilters = field(default_factory=ExportFilters)
    hxl: bool = False
    bom: bool = False
    k: int = DEFAULT_K
    max_suppression: float = DEFAULT_MAX_SUPPRESSION

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError("k must be at least 2")
        if not 0 <= self.max_suppression <= 1:
            raise ValueError("max_suppression is a share between 0 and 1")


class NeedsEncryption(ExportError):
    """The full level leaves Beacon only encrypted (or, on the command line, with --plaintext)."""


def export_filename(request: ExportRequest, at: datetime, *, encrypted: bool) -> str:
    extension = request.format.value + (".age" if encrypted else "")
    return f"beacon-{request.level.value}-{at.astimezone(UTC):%Y%m%d-%H%M%S}.{extension}"


async def write_export(
    source: ExportSource,
    request: ExportRequest,
    out: IO[bytes],
    *,
    areas: Callable[[str], AreaInfo | None],
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> ExportSummary:
    """Write the export ``request`` asks for from ``source`` into ``out`` and return what was written.

    Withdrawn reports and suspected floods appear only at the full level. At the public level the
    quasi-identifiers are generalised and the records still in groups smaller than k suppressed
    (``bot.domain.export.plan_anonymity``); GeoJSON instead leaves out areas with fewer than k cases.
    """
    level = request.level
    only_active = level is not ExportLevel.FULL
    total = await source.count(request.filters, only_active=only_active)
    plan: AnonymityPlan | None = None
    if level is ExportLevel.PUBLIC and request.format is not ExportFormat.GEOJSON:
        counts = await source.quasi_identifier_counts(request.filters)
        plan = plan_anonymity(counts, k=request.k, max_suppression=request.max_suppression)

    summary = ExportSummary(
        level=level,
        format=request.format,
        generated_at=now or datetime.now(UTC),
        filters={key: str(value) for key, value in request.filters.audit_details().items()},
        k=request.k if level is ExportLevel.PUBLIC else None,
        generalisation=plan.describe() if plan else {},
    )
    columns = columns_for(level)
    writer = make_writer(
        request.format, out, level=level, hxl=request.hxl, bom=request.bom, areas=areas, k=request.k
    )
    writer.begin(columns)
    done = 0
    async for batch in source.cases(
        request.filters, only_active=only_active, decrypt=level is ExportLevel.FULL
    ):
        for case in batch:
            generalised = None
            if plan is not None:
                generalised = plan.generalise(case)
                if generalised is None:
                    summary.suppressed += 1
                    continue
            writer.row(case, row_values(columns, case, generalised))
            summary.rows += 1
        done += len(batch)
        if progress is not None:
            progress(done, total)
        await asyncio.sleep(0)  # let the bot answer others between batches
    writer.end(summary)
    return summary


def audit_details(summary: ExportSummary, *, via: str, encrypted: bool) -> dict[str, str | int | bool | None]:
    """The audit trail's record of an export: who is the actor; this is level, format, filters, rows."""
    details: dict[str, str | int | bool | None] = {
        "via": via,
        "level": summary.level.value,
        "format": summary.format.value,
        "rows": summary.rows,
        "suppressed": summary.suppressed,
        "encrypted": encrypted,
    }
    if summary.k is not None:
        details["k"] = summary.k
    details.update(summary.filters)
    return details


class RolePort(Protocol):
    async def role_of(self, user_id: int) -> Role | None: ...


@dataclass(frozen=True)
class ExportFile:
    name: str
    content: bytes
    summary: ExportSummary
    encrypted: bool


class ExportService:
    """The bot's /export: role-checked, encrypted at the full level, capped in size, audited."""

    def __init__(
        self,
        *,
        staff: RolePort,
        open_source: Callable[[bool], Awaitable[ExportSource]],
        record: Callable[[int | None, Mapping[str, str | int | bool | None]], Awaitable[None]],
        areas: Callable[[str], AreaInfo | None],
        recipients: Sequence[Recipient] = (),
        max_bytes: int = TELEGRAM_UPLOAD_LIMIT,
    ) -> None:
        self._staff = staff
        self._open_source = open_source
        self._record = record
        self._areas = areas
        self._recipients = tuple(recipients)
        self._max_bytes = max_bytes

    async def role(self, user_id: int) -> Role | None:
        return await self._staff.role_of(user_id)

    async def levels_for(self, user_id: int) -> list[ExportLevel]:
        """The levels this member of staff may export at (none: not allowed to export)."""
        role = await self._staff.role_of(user_id)
        return [level for level in ExportLevel if may_export(role, level)]

    @property
    def can_encrypt(self) -> bool:
        return bool(self._recipients)

    async def export(self, actor_id: int, request: ExportRequest) -> ExportFile:
        """Make the export for ``actor_id``. Raises ``bot.services.casework.NotAllowed``-like
        ``PermissionError`` if their role does not allow the level, ``NeedsEncryption`` for the full level
        without recipients, ``ExportTooLarge`` past the cap."""
        role = await self._staff.role_of(actor_id)
        if not may_export(role, request.level):
            raise PermissionError(request.level.value)
        encrypt = request.level is ExportLevel.FULL
        if encrypt and not self._recipients:
            raise NeedsEncryption("the full level needs BEACON_EXPORT_RECIPIENTS")
        now = datetime.now(UTC)
        buffer = CappedBuffer(self._max_bytes)
        source = await self._open_source(encrypt)
        try:
            raw: io.RawIOBase = AgeEncryptor(buffer, self._recipients) if encrypt else buffer
            out = io.BufferedWriter(raw, buffer_size=1 << 16)
            try:
                summary = await write_export(source, request, out, areas=self._areas, now=now)
                out.flush()
            finally:
                raw.close()
        finally:
            await source.close()
        await self._record(actor_id, audit_details(summary, via="telegram", encrypted=encrypt))
        return ExportFile(
            name=export_filename(request, now, encrypted=encrypt),
            content=buffer.getvalue(),
            summary=summary,
            encrypted=encrypt,
        )
