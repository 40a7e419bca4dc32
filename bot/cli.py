"""The ``beacon`` command: run the bot, make a key, migrate the database, verify the audit trail, start the
sandbox or the demo, and operate a deployment (backup, purge, doctor).

Each subcommand is a thin call into the library; errors become one line on stderr and an exit status
(2 for configuration and usage errors, 1 for failures at run time), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.cli_output import EXIT_FAILURE, EXIT_USAGE, PROG, error
from bot.config import MAX_RETENTION_DAYS, ConfigError, load_settings
from bot.export_cli import add_export_parser, run_export
from bot.keys import generate_secret_key

__all__ = ["build_parser", "main"]


# These hand their arguments, unparsed, to a program with its own options.
_PASSTHROUGH = ("sandbox", "demo")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for ``beacon`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Beacon: an anonymous reporting bot. Configured by BEACON_* variables or a .env file.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the bot (long polling, or a webhook with --webhook-url)",
        description="Run the bot. Without --webhook-url it uses long polling.",
    )
    run.add_argument(
        "--webhook-url",
        metavar="URL",
        help="public https URL Telegram should post updates to; its path is served locally",
    )
    run.add_argument(
        "--listen", default="127.0.0.1", help="address the webhook server binds (default: %(default)s)"
    )
    run.add_argument(
        "--port", type=int, default=8443, help="port the webhook server binds (default: %(default)s)"
    )
    run.add_argument(
        "--secret-token",
        metavar="TOKEN",
        help="webhook secret Telegram must send back (default: a fresh random one per run)",
    )

    commands.add_parser(
        "keygen",
        help="print a new secret key for BEACON_SECRET_KEY",
        description="Print a new random secret key (base64 of 32 bytes) for BEACON_SECRET_KEY.",
    )
    commands.add_parser(
        "migrate",
        help="apply database migrations to BEACON_DATABASE",
        description="Create or upgrade the database at BEACON_DATABASE and print the migrations applied.",
    )
    audit = commands.add_parser(
        "audit",
        help="check the audit trail of BEACON_DATABASE",
        description="Work with the append-only, hash-chained audit trail of coordinators' actions.",
    )
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    audit_commands.add_parser(
        "verify",
        help="check the hash chain and name the first broken entry",
        description="Check every entry of the audit trail in BEACON_DATABASE against the one before it. "
        "Exit status 0 if the chain is intact, 1 if it is broken (the first broken entry is named).",
    )
    commands.add_parser(
        "sandbox",
        help="run the local Telegram Bot API emulator (options: --host, --port, --token)",
        description="Run the local Telegram Bot API emulator. Every argument is passed to it; "
        "see its own options with: beacon sandbox -- --help",
    )
    commands.add_parser(
        "demo",
        help="run the bot against the sandbox with sample data",
        description="Run the demo. Every argument is passed to it; "
        "see its own options with: beacon demo -- --help",
    )
    add_export_parser(commands)
    _add_operations(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    """Run the bot until it is stopped."""
    # Imported here so that keygen and --help do not pay for loading python-telegram-bot.
    from telegram.error import InvalidToken, NetworkError

    from bot.app import run_polling, run_webhook, webhook_path
    from bot.domain.gazetteer import GazetteerError
    from bot.domain.routing import RoutingError
    from bot.i18n import CatalogError
    from storage.db import StorageError

    settings = load_settings()
    if args.webhook_url:
        try:
            webhook_path(args.webhook_url)
        except ValueError as exc:
            error(str(exc))
            return EXIT_USAGE
    try:
        if args.webhook_url:
            run_webhook(settings, args.webhook_url, args.listen, args.port, args.secret_token)
        else:
            run_polling(settings)
    except InvalidToken:
        error("the Bot API rejected BEACON_BOT_TOKEN")
        return EXIT_FAILURE
    except NetworkError as exc:
        error(f"cannot reach the Bot API at {settings.api_url} ({type(exc).__name__})")
        return EXIT_FAILURE
    except (StorageError, CatalogError) as exc:
        error(str(exc))
        return EXIT_FAILURE
    except (GazetteerError, RoutingError) as exc:
        error(str(exc), "configuration error")
        return EXIT_USAGE
    return 0


def _keygen(args: argparse.Namespace) -> int:
    """Print a fresh secret key."""
    print(generate_secret_key())
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations to the configured database and list them."""
    from storage.db import StorageError, open_database
    from storage.migrations import migrate

    settings = load_settings()

    async def apply() -> list[str]:
        conn = await open_database(settings.database)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    try:
        applied = asyncio.run(apply())
    except StorageError as exc:
        error(str(exc))
        return EXIT_FAILURE
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print(f"{settings.database}: already up to date")
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Run an ``audit`` action (only ``verify`` for now)."""
    from storage.audit import AuditCheck, verify_audit
    from storage.db import StorageError, open_database

    settings = load_settings()
    # open_database would create a missing file: verifying nothing must not pass for an intact trail.
    if not settings.database.is_file():
        error(f"no database at {settings.database}")
        return EXIT_FAILURE

    async def verify() -> AuditCheck:
        conn = await open_database(settings.database)
        try:
            return await verify_audit(conn)
        finally:
            await conn.close()

    try:
        check = asyncio.run(verify())
    except StorageError as exc:
        error(str(exc))
        return EXIT_FAILURE
    if not check.intact:
        print(f"audit chain broken at entry {check.broken_id}: {check.problem}")
        return EXIT_FAILURE
    print(f"audit chain intact: {check.entries} entries")
    return 0


def _sandbox(rest: list[str]) -> int:
    """Start the Bot API emulator with ``rest`` as its arguments."""
    from sandbox.server import main as sandbox_main

    return sandbox_main(rest)


def _demo(rest: list[str]) -> int:
    """Start the demo with ``rest`` as its arguments."""
    from bot.demo import main as demo_main

    return demo_main(rest)


# --- operations: backup, purge, doctor (what they do is in bot/ops.py) -----------------------------------


def _retention_days(text: str) -> int:
    """Parse ``--days``: a whole number of days within the range ``BEACON_RETENTION_DAYS`` allows."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
    return days


def _add_operations(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backup``, ``purge`` and ``doctor`` to the subcommands."""
    backup = commands.add_parser(
        "backup",
        help="write a consistent copy of BEACON_DATABASE, even while the bot runs",
        description="Copy BEACON_DATABASE to PATH with SQLite's online backup, check the copy's integrity, "
        "and move it into place in one step (mode 0600). Reports are encrypted in the copy as in the "
        "database, with keys derived from BEACON_SECRET_KEY, which the copy does not contain: keep the "
        "key safe, and apart from the backups.",
    )
    backup.add_argument("path", metavar="PATH", type=Path, help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    purge = commands.add_parser(
        "purge",
        help="erase what was written about cases closed more than BEACON_RETENTION_DAYS ago",
        description="Erase the free text, place details, victim identity, media, notes, held messages, "
        "reporter link and receipt of cases closed (and untouched) for more than N days, keeping codes "
        "and dates for statistics; then empty the WAL so the erased bytes leave the disk.",
    )
    purge.add_argument(
        "--days",
        type=_retention_days,
        metavar="N",
        help="retention in days (default: BEACON_RETENTION_DAYS, 90 unless set)",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count the cases that would be purged")
    commands.add_parser(
        "doctor",
        help="check configuration, database, outbox, audit trail and the Bot API",
        description="Check the configuration, the database (pragmas, migrations, outbox backlog, dead "
        "letters, audit trail), the Bot API and the coordinators' group, one line each. Read-only. "
        "Exit status 1 if any check fails.",
    )


def _backup(args: argparse.Namespace) -> int:
    """Write a backup of the configured database and describe it."""
    from bot.ops import backup
    from storage.db import StorageError

    settings = load_settings()
    try:
        result = asyncio.run(backup(settings, args.path, force=args.force))
    except StorageError as exc:
        error(str(exc))
        return EXIT_FAILURE
    cases = "case" if result.cases == 1 else "cases"
    print(f"{result.path}: {result.size / 2**20:.1f} MiB ({result.size} bytes), {result.cases} {cases}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    """Purge (or count) cases past the retention and say how many."""
    from bot.ops import purge
    from storage.db import StorageError

    settings = load_settings()
    try:
        result = asyncio.run(purge(settings, args.days, dry_run=args.dry_run))
    except StorageError as exc:
        error(str(exc))
        return EXIT_FAILURE
    cases = "case" if result.cases == 1 else "cases"
    before = f"closed before {result.cutoff:%Y-%m-%d %H:%M} UTC"
    if result.dry_run:
        print(f"would purge {result.cases} {cases} {before}")
        return 0
    print(f"purged {result.cases} {cases} {before}")
    if not result.checkpointed:
        error("the WAL could not be emptied (the database is busy); run beacon purge again")
        return EXIT_FAILURE
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Print one line per health check; exit status 1 if any failed."""
    from bot.ops import doctor

    async def run() -> bool:
        healthy = True
        async for check in doctor():
            print(check.line(), flush=True)
            healthy = healthy and check.ok
        return healthy

    return 0 if asyncio.run(run()) else EXIT_FAILURE


_OPERATIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "backup": _backup,
    "purge": _purge,
    "doctor": _doctor,
}


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "keygen": _keygen,
    "migrate": _migrate,
    "audit": _audit,
    "export": run_export,
    **_OPERATIONS,
}
_DELEGATES: dict[str, Callable[[list[str]], int]] = {"sandbox": _sandbox, "demo": _demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``beacon`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()

    # "beacon sandbox --port 9000": the rest belongs to the sandbox; only a lone --help is ours.
    if args and args[0] in _PASSTHROUGH and args[1:] not in (["-h"], ["--help"]):
        rest = args[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        return _DELEGATES[args[0]](rest)

    try:
        namespace = parser.parse_args(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _COMMANDS[namespace.command](namespace)
    except ConfigError as exc:
        error(str(exc), "configuration error")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
