"""The `beacon` command line: subcommands, help, key generation, migration and delegation."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.domain.workflow import Role
from storage.db import open_database
from storage.migrations import MIGRATIONS
from storage.workflow import StaffStore
from tests.storage.factories import tamper_audit

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["run", "keygen", "migrate", "audit", "sandbox", "demo", "export", "backup", "purge", "doctor"]


def test_keygen_prints_base64_of_32_fresh_random_bytes(capsys):
    """`beacon keygen` prints one key that decodes to 32 bytes, different each time."""
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out
    assert first.endswith("\n")
    assert first.count("\n") == 1
    assert len(base64.b64decode(first.strip(), validate=True)) == 32
    assert first != second


def test_parser_offers_every_subcommand():
    """The parser knows exactly the documented subcommands."""
    parser = build_parser()
    actions = [action for action in parser._actions if action.dest == "command"]
    assert actions[0].choices is not None
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize(
    "argv", [["--help"], ["audit", "verify", "--help"], *([command, "--help"] for command in SUBCOMMANDS)]
)
def test_every_command_has_help_that_exits_0(argv, capsys):
    """`beacon --help` and `beacon <command> --help` print usage and succeed."""
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: beacon")
    if argv[0] in {"sandbox", "demo"}:
        assert "passed to it" in out


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["keygen", "--extra"], ["run", "--port", "eighty"], ["audit"], ["audit", "fix"]],
)
def test_usage_errors_exit_2(argv, capsys):
    """A missing or unknown command, or a bad option, is a usage error with exit status 2."""
    assert main(argv) == 2
    assert "usage: beacon" in capsys.readouterr().err


def test_migrate_creates_and_upgrades_the_configured_database(valid_env, tmp_path, capsys):
    """`beacon migrate` creates the database and its folder, then reports it is current."""
    database = tmp_path / "db" / "beacon.db"
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "".join(f"applied {migration.name}\n" for migration in MIGRATIONS)
    assert database.is_file()
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == f"{database}: already up to date\n"


def test_migrate_reports_a_storage_failure_in_one_line(valid_env, tmp_path, capsys):
    """A database path that cannot be created gives one error line and exit status 1."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    valid_env.setenv("BEACON_DATABASE", str(tmp_path / "blocker" / "beacon.db"))
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("beacon: error: cannot open database")
    assert err.count("\n") == 1


async def _grant_three(database: Path) -> None:
    conn = await open_database(database)
    try:
        staff = StaffStore(conn)
        for user_id in (11, 22, 33):
            await staff.grant(user_id, Role.COORDINATOR, by=None)
    finally:
        await conn.close()


def test_audit_verify_reports_an_intact_chain_then_names_a_tampered_entry(valid_env, tmp_path, capsys):
    """`beacon audit verify`: exit 0 with the count while intact, exit 1 naming the entry once edited."""
    database = tmp_path / "db" / "beacon.db"
    assert main(["migrate"]) == 0
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    asyncio.run(_grant_three(database))
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out == "audit chain intact: 3 entries\n"

    tamper_audit(database, 2, details='{"role":"admin","staff_id":22,"previous_role":null}')
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out == (
        "audit chain broken at entry 2: hash does not match the entry's contents (edited)\n"
    )


def test_audit_verify_without_a_database_fails_in_one_line_and_creates_nothing(valid_env, tmp_path, capsys):
    """A missing database is an error (exit 1), not an empty and therefore intact trail."""
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert err == f"beacon: error: no database at {tmp_path / 'db' / 'beacon.db'}\n"
    assert not (tmp_path / "db" / "beacon.db").exists()


def test_audit_verify_on_an_unmigrated_database_says_to_migrate(valid_env, tmp_path, capsys):
    """A database without the audit table gives one error line pointing at `beacon migrate`, exit 1."""
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "beacon.db").touch()
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("beacon: error: no audit trail in this database (run beacon migrate)")
    assert err.count("\n") == 1


def test_audit_verify_without_configuration_is_a_configuration_error(capsys):
    """Missing BEACON_* variables: one configuration error line, exit 2, like the other commands."""
    assert main(["audit", "verify"]) == 2
    assert capsys.readouterr().err.startswith("beacon: configuration error:")


def test_run_refuses_a_webhook_url_that_is_not_http(valid_env, capsys):
    """`beacon run --webhook-url` with a non-URL stops before contacting Telegram, exit status 2."""
    assert main(["run", "--webhook-url", "telegram.example.org/hook"]) == 2
    assert capsys.readouterr().err.startswith("beacon: error: --webhook-url must be")


def fake_module(name: str, calls: list[list[str]], status: int) -> types.ModuleType:
    module = types.ModuleType(name)

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return status

    module.main = fake_main  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(("command", "module"), [("sandbox", "sandbox.server"), ("demo", "bot.demo")])
def test_sandbox_and_demo_receive_the_remaining_arguments(monkeypatch, command, module):
    """`beacon sandbox|demo ARGS` calls that program's main(ARGS) and returns its exit status."""
    calls: list[list[str]] = []
    monkeypatch.setitem(sys.modules, module, fake_module(module, calls, status=3))
    assert main([command, "--port", "9000", "--token=123:TEST"]) == 3
    assert main([command]) == 3
    assert main([command, "--", "--help"]) == 3
    assert calls == [["--port", "9000", "--token=123:TEST"], [], ["--help"]]


@pytest.mark.slow
def test_python_dash_m_bot_runs_the_command_line(tmp_path):
    """`python -m bot` is the same program as `beacon`."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "keygen"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(base64.b64decode(result.stdout.strip())) == 32
