"""`beacon backup`, `beacon purge` and `beacon doctor` as operators call them: output, exit status, one-line
errors, the retention setting, and a doctor that never writes."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from bot import config
from bot.app import HEALTH_PATH, HealthHandler, webhook_path
from bot.cli import main
from bot.config import load_settings
from bot.crypto import Keyring
from bot.domain.models import CaseStatus
from bot.domain.workflow import ClosingReason
from bot.ops import Check, doctor, format_age
from storage import maintenance
from storage.cases import CaseStore
from storage.db import DatabaseOpenError, open_database
from storage.migrations import MIGRATIONS, migrate
from storage.workflow import WorkflowStore
from tests.storage.factories import ROOT, Clock, make_case, rich_report
from tests.unit.conftest import VALID_TOKEN

COORDINATOR = 222


def seed(
    database: Path, *, closed_days_ago: tuple[int, ...] = (), open_days_ago: tuple[int, ...] = ()
) -> None:
    """Migrate the database and file cases through the real stores: closed ones (closed the day they were
    filed) and open ones, that many days ago."""

    async def go() -> None:
        conn = await open_database(database)
        try:
            await migrate(conn)
            keyring = Keyring(ROOT)
            for days, close in [(d, True) for d in closed_days_ago] + [(d, False) for d in open_days_ago]:
                clock = Clock(datetime.now(UTC) - timedelta(days=days))
                new, _ = make_case(keyring, report=rich_report("CLIQZX"), created_at=clock.now)
                await CaseStore(conn, keyring, clock=clock).create_case(new)
                if close:
                    await WorkflowStore(conn, keyring, clock=clock).set_status(
                        new.case_id, CaseStatus.CLOSED, COORDINATOR, ClosingReason.ESCAPED
                    )
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture
def database(valid_env, tmp_path) -> Path:
    return tmp_path / "db" / "beacon.db"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


# --- backup ----------------------------------------------------------------------------------------------


def test_backup_writes_the_copy_and_prints_path_size_and_cases(database, tmp_path, capsys):
    """`beacon backup PATH` prints where, how big and how many cases; the file is owner-only."""
    seed(database, open_days_ago=(0, 1))
    target = tmp_path / "backup.db"

    assert main(["backup", str(target)]) == 0

    size = target.stat().st_size
    assert capsys.readouterr().out == f"{target}: {size / 2**20:.1f} MiB ({size} bytes), 2 cases\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_backup_refuses_an_existing_file_unless_forced(database, tmp_path, capsys):
    seed(database)
    target = tmp_path / "backup.db"
    target.write_bytes(b"keep me")

    assert main(["backup", str(target)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"beacon: error: {target} exists (use --force to replace it)"
    )
    assert target.read_bytes() == b"keep me"

    assert main(["backup", "--force", str(target)]) == 0
    assert capsys.readouterr().out.endswith(", 0 cases\n")


def test_backup_without_a_database_fails_in_one_line_and_creates_nothing(database, tmp_path, capsys):
    assert main(["backup", str(tmp_path / "backup.db")]) == 1
    assert one_error_line(capsys.readouterr().err) == f"beacon: error: no database at {database}"
    assert not database.exists()
    assert not (tmp_path / "backup.db").exists()


def test_backup_to_an_unwritable_path_fails_in_one_line(database, tmp_path, capsys):
    seed(database)
    (tmp_path / "plain").write_text("a file, not a folder")

    assert main(["backup", str(tmp_path / "plain" / "backup.db")]) == 1
    assert one_error_line(capsys.readouterr().err).startswith(f"beacon: error: cannot write in {tmp_path}")


# --- purge -----------------------------------------------------------------------------------------------


def test_purge_counts_in_a_dry_run_then_purges_and_says_how_many(database, capsys):
    """Default retention 90 days: a case closed 200 days ago goes, one closed 10 days ago and an open one
    stay; a second run finds nothing."""
    seed(database, closed_days_ago=(200, 10), open_days_ago=(300,))

    assert main(["purge", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would purge 1 case closed before ")
    assert main(["purge"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("purged 1 case closed before ")
    assert out.endswith(" UTC\n")
    assert main(["purge"]) == 0
    assert capsys.readouterr().out.startswith("purged 0 cases closed before ")


def test_purge_reads_the_retention_from_the_setting_and_days_overrides_it(database, valid_env, capsys):
    seed(database, closed_days_ago=(200, 10))
    valid_env.setenv("BEACON_RETENTION_DAYS", "365")

    assert main(["purge", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would purge 0 cases")
    assert main(["purge", "--dry-run", "--days", "5"]) == 0
    assert capsys.readouterr().out.startswith("would purge 2 cases")


@pytest.mark.parametrize("days", ["0", "-3", "ninety", "36501"])
def test_purge_refuses_a_retention_that_is_not_a_whole_number_of_days(database, days, capsys):
    assert main(["purge", "--days", days]) == 2
    assert "must be a whole number of days from 1 to 36500" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_retention_setting_is_a_configuration_error_naming_the_variable(valid_env, value, capsys):
    valid_env.setenv("BEACON_RETENTION_DAYS", value)
    assert main(["purge"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "beacon: configuration error: BEACON_RETENTION_DAYS: must be a whole number of days from 1 to 36500"
    )


def test_the_retention_defaults_to_90_days(valid_env):
    assert load_settings().retention_days == 90
    assert config.MAX_RETENTION_DAYS == maintenance.MAX_RETENTION_DAYS


def test_purge_of_an_unmigrated_database_says_to_migrate(database, capsys):
    asyncio.run(_empty_wal_database(database))
    assert main(["purge"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"beacon: error: the database lacks {len(MIGRATIONS)} migration(s): run beacon migrate"
    )


def test_purge_without_a_database_fails_and_creates_nothing(database, capsys):
    assert main(["purge"]) == 1
    assert one_error_line(capsys.readouterr().err) == f"beacon: error: no database at {database}"
    assert not database.exists()


async def _empty_wal_database(path: Path) -> None:
    await (await open_database(path)).close()


# --- doctor ----------------------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_doctor_prints_one_line_per_check_and_fails_when_the_bot_api_is_unreachable(
    database, valid_env, closed_port, capsys
):
    """Every database check passes; the unreachable Bot API and the unset group are ✗, so exit 1. The
    token is never printed and the database file is not changed."""
    seed(database, open_days_ago=(0,))
    valid_env.setenv("BEACON_API_URL", f"http://127.0.0.1:{closed_port}")
    before = digest(database)

    assert main(["doctor"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "✓ configuration",
        "✓ database",
        "✓ migrations",
        "✓ outbox",
        "✓ dead letters",
        "✓ audit trail",
        "✗ Bot API",
        "✗ coordinators' group",
    ]
    assert lines[2] == f"✓ migrations: all {len(MIGRATIONS)} applied"
    assert lines[3].startswith("✓ outbox: 1 alert(s) waiting, the oldest for ")
    assert lines[5] == "✓ audit trail: intact, 1 entries"
    assert lines[6].startswith(f"✗ Bot API: cannot reach http://127.0.0.1:{closed_port} (")
    assert VALID_TOKEN not in "\n".join(lines)
    assert VALID_TOKEN.split(":")[1] not in "\n".join(lines)
    assert digest(database) == before


def test_doctor_without_configuration_says_what_is_missing_and_fails(capsys):
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✗ configuration: BEACON_BOT_TOKEN: is required")
    assert out.count("\n") == 1


def test_doctor_without_a_database_says_so_and_creates_none(database, valid_env, closed_port, capsys):
    valid_env.setenv("BEACON_API_URL", f"http://127.0.0.1:{closed_port}")
    valid_env.setenv("BEACON_COORDINATOR_CHAT_ID", "-1001234567890")

    assert main(["doctor"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"✗ database: no database at {database}"
    assert [line.split(":")[0] for line in lines[2:]] == ["✗ Bot API", "✓ coordinators' group"]
    assert not database.exists()
    assert not database.parent.exists()


def test_doctor_on_an_unmigrated_database_lists_pending_migrations_and_writes_nothing(
    database, valid_env, closed_port, capsys
):
    valid_env.setenv("BEACON_API_URL", f"http://127.0.0.1:{closed_port}")
    asyncio.run(_empty_wal_database(database))
    before = digest(database)

    assert main(["doctor"]) == 1

    out = capsys.readouterr().out
    assert f"✗ migrations: {len(MIGRATIONS)} pending ({MIGRATIONS[0].name}, " in out
    assert "run beacon migrate" in out
    assert digest(database) == before


async def test_doctor_flags_an_alert_waiting_too_long(valid_env, tmp_path, closed_port):
    """An alert unsent for an hour means the coordinators are not being told: ✗ outbox."""
    database = tmp_path / "db" / "beacon.db"
    await asyncio.to_thread(seed, database)
    conn = await open_database(database)
    try:
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        new, _ = make_case(Keyring(ROOT), created_at=hour_ago)
        await CaseStore(conn, Keyring(ROOT), clock=Clock(hour_ago)).create_case(new)
    finally:
        await conn.close()
    settings = load_settings(api_url=f"http://127.0.0.1:{closed_port}")

    checks = {check.name: check async for check in doctor(lambda: settings, api_timeout=1)}

    assert not checks["outbox"].ok
    assert checks["outbox"].detail == (
        "1 alert(s) waiting, the oldest for 1 h: alerts are not reaching the coordinators"
    )


async def test_a_bot_api_that_never_answers_is_a_failed_check_naming_the_wait(valid_env, tmp_path):
    """A server that accepts the connection and stays silent: ✗ after the short timeout, not a hang."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = load_settings(api_url=f"http://127.0.0.1:{port}")
        checks = {check.name: check async for check in doctor(lambda: settings, api_timeout=0.2)}
    assert checks["Bot API"] == Check(
        "Bot API", False, f"no answer from http://127.0.0.1:{port} within 0.2 s"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (47 * 3600, "47 h"),
        (2 * 86400, "2 days"),
    ],
)
def test_ages_are_short_and_plain(seconds, text):
    assert format_age(timedelta(seconds=seconds)) == text


def test_a_check_line_starts_with_its_mark():
    assert Check("outbox", True, "no alerts waiting").line() == "✓ outbox: no alerts waiting"
    assert Check("Bot API", False, "down").line() == "✗ Bot API: down"


# --- the webhook's health path ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://bot.example.org/healthz", "https://bot.example.org/healthz/"])
def test_the_webhook_cannot_take_the_health_checks_path(url):
    with pytest.raises(ValueError, match="/healthz"):
        webhook_path(url)


async def _serve(backlog) -> tuple[str, tornado.httpserver.HTTPServer]:
    """Serve HealthHandler alone on a free loopback port; return its URL and the server."""
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(HEALTH_PATH, HealthHandler, {"backlog": backlog})])
    )
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return f"http://127.0.0.1:{sockets[0].getsockname()[1]}{HEALTH_PATH}", server


async def test_the_health_handler_answers_ok_with_the_backlog_and_503_when_the_database_fails(caplog):
    """200 and the count while the backlog can be read; 503, and a log line naming only the error's type,
    when it cannot."""

    async def three() -> int:
        return 3

    async def broken() -> int:
        raise DatabaseOpenError("cannot open database /secret/place.db")

    answers = []
    for backlog in (three, broken):
        url, server = await _serve(backlog)
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                answers.append((response.status, await response.json(), response.headers["Cache-Control"]))
        finally:
            server.stop()
    assert answers == [
        (200, {"status": "ok", "outbox_backlog": 3}, "no-store"),
        (503, {"status": "unavailable"}, "no-store"),
    ]
    assert "Health check failed: DatabaseOpenError" in caplog.text
    assert "/secret/place.db" not in caplog.text
