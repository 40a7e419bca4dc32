"""The `beacon` command line: subcommands, help, key generation, migration and delegation."""

from __future__ import annotations

import base64
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from storage.migrations import MIGRATIONS

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["run", "keygen", "migrate", "sandbox", "demo"]


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


@pytest.mark.parametrize("argv", [["--help"], *([command, "--help"] for command in SUBCOMMANDS)])
def test_every_command_has_help_that_exits_0(argv, capsys):
    """`beacon --help` and `beacon <command> --help` print usage and succeed."""
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: beacon")
    if argv[0] in {"sandbox", "demo"}:
        assert "passed to it" in out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["keygen", "--extra"], ["run", "--port", "eighty"]])
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
