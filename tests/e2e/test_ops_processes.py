"""Operations as a deployer runs them, each a real process: `beacon run --webhook-url` answers /healthz on its
webhook port while `beacon backup`, `beacon doctor` and `beacon purge` work on its live database."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from bot.crypto import Keyring
from sandbox.client import SandboxClient
from storage.cases import CaseStore
from storage.db import open_database
from tests.e2e.conftest import make_token
from tests.e2e.test_processes import (
    URL_LINE,
    _bot_env,
    _free_port,
    _greeting_roundtrip,
    _read_until,
    _spawn,
    _stop,
)
from tests.storage.factories import ROOT, make_case

pytestmark = pytest.mark.slow


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[str, str]]:
    """`beacon sandbox` in its own process: its URL and the bot token it knows."""
    token = make_token()
    process = await _spawn("sandbox", "--port", "0", "--token", token)
    try:
        yield await _read_until(process, URL_LINE), token
    finally:
        assert await _stop(process) == 0


async def _healthz(url: str, *, until: Mapping[str, object] | None = None, timeout: float = 60) -> object:
    """GET /healthz until it answers 200 (and, given ``until``, that JSON); return the JSON."""

    async def poll() -> object:
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(url) as response:
                        if response.status == 200:
                            assert response.headers["Content-Type"].startswith("application/json")
                            body = await response.json()
                            if until is None or body == until:
                                return body
                except aiohttp.ClientConnectionError:
                    pass  # the bot is still starting
                await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout)


async def _beacon(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run `beacon ARGS` to the end; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _file_a_report(database: Path) -> str:
    """Commit a report (and its alert) from another connection, as a second bot process would."""
    conn = await open_database(database)
    try:
        new, _ = make_case(Keyring(ROOT))
        await CaseStore(conn, Keyring(ROOT)).create_case(new)
        return new.case_id
    finally:
        await conn.close()


async def test_webhook_health_check_and_operations_on_a_running_bot(
    sandbox: tuple[str, str], tmp_path: Path
) -> None:
    """/healthz answers 200 with the outbox backlog beside the webhook; backup, doctor and purge run against
    the live database; SIGTERM still stops the bot cleanly."""
    url, token = sandbox
    bot_id = int(token.split(":")[0])
    async with SandboxClient(url) as sb:
        coordinator = await sb.create_user("Coordinator", language_code="en")
        group = await sb.create_group(
            "Coordinators",
            admins=[coordinator["id"]],
            bots=[{"bot_id": bot_id, "admin": True, "can_manage_topics": True}],
        )
    port = _free_port()
    env = _bot_env(url, token, tmp_path)
    database = Path(env["BEACON_DATABASE"])
    # No coordinators' group for the bot itself: alerts stay in the outbox, so the backlog is predictable.
    hook = f"http://127.0.0.1:{port}/telegram"
    bot = await _spawn("run", "--webhook-url", hook, "--port", str(port), env=env, cwd=tmp_path)
    output = ""
    try:
        health = f"http://127.0.0.1:{port}/healthz"
        assert await _healthz(health) == {"status": "ok", "outbox_backlog": 0}
        await _greeting_roundtrip(url, bot_id)  # the webhook itself still works beside it
        await _file_a_report(database)
        assert await _healthz(health, until={"status": "ok", "outbox_backlog": 1}) == {
            "status": "ok",
            "outbox_backlog": 1,
        }
        async with aiohttp.ClientSession() as http, http.post(health, data=b"{}") as response:
            assert response.status == 405

        ops_env = {**env, "BEACON_COORDINATOR_CHAT_ID": str(group["id"])}
        backup = tmp_path / "backups" / "beacon.db"
        backup.parent.mkdir(mode=0o700)
        status, out, err = await _beacon("backup", str(backup), env=ops_env, cwd=tmp_path)
        assert (status, err) == (0, ""), err
        assert re.fullmatch(rf"{re.escape(str(backup))}: \d+\.\d MiB \(\d+ bytes\), 1 case\n", out)
        with closing(sqlite3.connect(backup)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        status, out, err = await _beacon("doctor", env=ops_env, cwd=tmp_path)
        assert status == 0, out + err
        lines = out.splitlines()
        assert all(line.startswith("✓ ") for line in lines), out
        assert f"✓ Bot API: reachable at {url} as @" in out
        assert "✓ outbox: 1 alert(s) waiting, the oldest for " in out
        assert token not in out + err

        status, out, err = await _beacon("purge", "--dry-run", env=ops_env, cwd=tmp_path)
        assert (status, err) == (0, "")
        assert out.startswith("would purge 0 cases closed before ")
        status, out, err = await _beacon("purge", env=ops_env, cwd=tmp_path)
        assert (status, err) == (0, ""), err
        assert out.startswith("purged 0 cases closed before ")

        assert await _healthz(health) == {"status": "ok", "outbox_backlog": 1}
    finally:
        code = await _stop(bot)
        assert bot.stdout is not None
        output = (await bot.stdout.read()).decode()
    assert code == 0, output
    assert "Health check failed" not in output
    assert "No health check" not in output
    assert token not in output
    # The access log stays quiet: no request line names the health or webhook path.
    assert "/healthz" not in output, output
