"""``beacon export``: write cases to a file at a redaction level, optionally encrypted to age recipients.

Composition code for the command line (like bot/cli.py): it reads the settings, opens a read-only
snapshot of the database, streams the export through ``bot.services.export.write_export`` into a file
that appears only when complete, and writes the export to the audit trail before the file appears.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from bot.cli_output import EXIT_FAILURE, EXIT_USAGE, error
from bot.config import load_settings
from bot.domain.export import (
    DEFAULT_K,
    DEFAULT_MAX_SUPPRESSION,
    ExportFormat,
    ExportLevel,
    FilterError,
    parse_filters,
)

__all__ = ["add_export_parser", "run_export"]

# The files SQLite keeps beside a database: an export written over one of them would destroy the cases.
_SQLITE_FILES = ("-wal", "-shm", "-journal")


def add_export_parser(commands: Any) -> None:
    """Add ``export`` to the ``beacon`` subcommands."""
    export = commands.add_parser(
        "export",
        help="export cases (csv, jsonl, xlsx, geojson) at a redaction level",
        description="Export the cases of BEACON_DATABASE. Levels: full (every field, free text decrypted; "
        "needs --encrypt-to or --plaintext), partner (no free text, no coordinates, area only, dates to "
        "the day), public (CTDC-style, k-anonymous, no ids). Columns: docs/export-columns.md.",
    )
    export.add_argument("--format", "-f", default="csv", help="csv, jsonl, xlsx or geojson (default: csv)")
    export.add_argument("--level", "-l", default="partner", help="full, partner or public (default: partner)")
    export.add_argument("--output", "-o", metavar="PATH", help="file to write ('-' for standard output)")
    filters = export.add_argument_group("filters (lists may be comma-separated or repeated)")
    filters.add_argument("--since", metavar="DATE", help="reports received on or after this day (UTC)")
    filters.add_argument("--until", metavar="DATE", help="reports received on or before this day (UTC)")
    filters.add_argument("--status", action="append", default=[], help="new, acknowledged, in_contact, ...")
    filters.add_argument("--priority", action="append", default=[], help="1-4 or P1-P4")
    filters.add_argument("--country", action="append", default=[], help="ISO 3166-1 alpha-2, e.g. KH")
    filters.add_argument("--area", action="append", default=[], help="gazetteer area id (see --list-areas)")
    filters.add_argument(
        "--indicator", action="append", default=[], help="HTCDS code (e.g. WithholdsDocuments) or condition"
    )
    options = export.add_argument_group("options")
    options.add_argument("--hxl", action="store_true", help="CSV: add a row of HXL hashtags under the header")
    options.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 BOM (for Excel)")
    options.add_argument(
        "--encrypt-to",
        action="append",
        default=[],
        metavar="RECIPIENT",
        help="age recipient (age1...) or a file of recipients; repeat for several",
    )
    options.add_argument(
        "--plaintext", action="store_true", help="allow the full level unencrypted (you take the risk)"
    )
    options.add_argument("--k", type=int, default=DEFAULT_K, help="public level: k (default: %(default)s)")
    options.add_argument(
        "--max-suppression",
        type=float,
        default=DEFAULT_MAX_SUPPRESSION,
        help="public level: share of records that may be suppressed before generalising more "
        "(default: %(default)s)",
    )
    options.add_argument("--list-areas", action="store_true", help="print the gazetteer's area ids and exit")


def _choice(kind: str, value: str, enum: type[ExportFormat] | type[ExportLevel]) -> Any:
    try:
        return enum(value.lower())
    except ValueError:
        raise FilterError(
            f"unknown {kind} {value!r}; use one of: {', '.join(e.value for e in enum)}"
        ) from None


@contextmanager
def _stdout() -> Iterator[IO[bytes]]:
    yield sys.stdout.buffer
    sys.stdout.buffer.flush()


def _progress(total_hint: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A progress bar on a terminal (stderr), nothing otherwise."""
    if not total_hint or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar: tqdm[Any] | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="case", file=sys.stderr, leave=False, dynamic_ncols=True)
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


def run_export(args: argparse.Namespace) -> int:
    """Run ``beacon export``; return the exit status."""
    import aiosqlite

    from bot.crypto import DecryptionError, Keyring
    from bot.domain.gazetteer import GazetteerError, load_gazetteer
    from bot.services.export import ExportRequest, audit_details, write_export
    from bot.services.export_formats import area_lookup
    from bot.services.export_sinks import AgeEncryptor, ExportError, atomic_output, parse_recipients
    from storage.db import StorageError, open_database
    from storage.export import ExportReader, record_export

    settings = load_settings()
    try:
        gazetteer = load_gazetteer(settings.gazetteer)
    except GazetteerError as exc:
        error(str(exc))
        return EXIT_USAGE
    if args.list_areas:
        for country in gazetteer.countries():
            for area in gazetteer.areas_in(country.code):
                print(f"{area.id}\t{area.name}")
        return 0

    try:
        fmt = _choice("format", args.format, ExportFormat)
        level = _choice("level", args.level, ExportLevel)
        filters = parse_filters(
            since=args.since,
            until=args.until,
            status=args.status,
            priority=args.priority,
            country=args.country,
            area=args.area,
            indicator=args.indicator,
            known_areas=lambda area_id: gazetteer.area(area_id) is not None,
        )
        request = ExportRequest(
            level=level,
            format=fmt,
            filters=filters,
            hxl=args.hxl,
            bom=args.bom,
            k=args.k,
            max_suppression=args.max_suppression,
        )
        recipients = parse_recipients(args.encrypt_to)
    except (FilterError, ValueError, ExportError) as exc:
        error(str(exc))
        return EXIT_USAGE
    if (args.hxl or args.bom) and fmt is not ExportFormat.CSV:
        error("--hxl and --bom apply to the csv format only")
        return EXIT_USAGE
    if not args.output:
        error("give the file to write with --output PATH ('-' for standard output)")
        return EXIT_USAGE
    if level is ExportLevel.FULL and not recipients and not args.plaintext:
        error(
            "the full level holds decrypted free text: encrypt it with --encrypt-to RECIPIENT "
            "(age), or pass --plaintext to accept the risk"
        )
        return EXIT_USAGE
    if not settings.database.is_file():
        error(f"no database at {settings.database}")
        return EXIT_FAILURE

    areas = area_lookup(gazetteer)

    to_stdout = args.output == "-"
    output = Path(args.output)
    database = settings.database.resolve()
    if not to_stdout and output.resolve() in {database, *(Path(f"{database}{end}") for end in _SQLITE_FILES)}:
        error(f"will not write the export over the database {settings.database}")
        return EXIT_USAGE
    keyring = Keyring(settings.secret_key_bytes())
    progress, close_progress = _progress(not to_stdout or not sys.stdout.isatty())

    async def export() -> tuple[object, bool]:
        sink_context = _stdout() if to_stdout else atomic_output(output)
        with sink_context as destination:
            raw: io.RawIOBase | None = AgeEncryptor(destination, recipients) if recipients else None
            out: IO[bytes] = io.BufferedWriter(raw, buffer_size=1 << 20) if raw is not None else destination
            try:
                async with await ExportReader.open(settings.database, keyring) as reader:
                    summary = await write_export(reader, request, out, areas=areas, progress=progress)
                out.flush()
            finally:
                if raw is not None:
                    raw.close()
            # Audited before the file appears: an export the trail does not know of never exists.
            conn = await open_database(settings.database)
            try:
                await record_export(
                    conn,
                    actor_id=None,
                    details=audit_details(summary, via="command_line", encrypted=bool(recipients)),
                )
            finally:
                await conn.close()
        return summary, bool(recipients)

    try:
        summary, encrypted = asyncio.run(export())
    except (ExportError, StorageError) as exc:
        close_progress()
        error(str(exc))
        return EXIT_FAILURE
    except aiosqlite.Error as exc:
        close_progress()
        error(f"cannot read {settings.database} (is it migrated? run: beacon migrate): {exc}")
        return EXIT_FAILURE
    except DecryptionError as exc:
        close_progress()
        error(f"cannot decrypt the cases ({exc}): was the database written with this BEACON_SECRET_KEY?")
        return EXIT_FAILURE
    except OSError as exc:
        close_progress()
        error(f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_FAILURE
    close_progress()
    print(_describe(summary, encrypted, "standard output" if to_stdout else str(output)), file=sys.stderr)
    return 0


def _describe(summary: Any, encrypted: bool, where: str) -> str:
    # GeoJSON counts cases too (those in the areas it publishes), not areas.
    text = (
        f"exported {summary.rows} case{'s' if summary.rows != 1 else ''} "
        f"(level {summary.level.value}, {summary.format.value}{', age-encrypted' if encrypted else ''}) "
        f"to {where}"
    )
    if summary.level is ExportLevel.PUBLIC:
        generalised = ", ".join(f"{name}: {how}" for name, how in summary.generalisation.items() if how)
        text += f"; {summary.suppressed} suppressed to keep k={summary.k}"
        if generalised:
            text += f" ({generalised})"
    return text
