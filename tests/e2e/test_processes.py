"""The command line as operators use it: `beacon sandbox`, `beacon run` (polling, webhook), `beacon demo`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.keys import generate_secret_key
from sandbox.client import SandboxClient
from tests.e2e.conftest import make_token

pytestmark = pytest.mark.slow
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _spawn(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


async def _read_until(
    process: asyncio.subprocess.Process, pattern: re.Pattern[str], timeout: float = 20
) -> str:
    """Read the process's output until a line matches; return the first group."""
    assert process.stdout is not None
    seen: list[str] = []

    async def scan() -> str:
        assert process.stdout is not None
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("process ended before printing the expected line:\n" + "".join(seen))
            seen.append(line)
            match = pattern.search(line)
            if match:
                return match.group(1)

    return await asyncio.wait_for(scan(), timeout)


async def _stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if process.returncode is None:
        process.send_signal(sig)
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the process did not stop in time") from None


@pytest.fixture
async def sandbox_process() -> AsyncIterator[tuple[str, str]]:
    token = make_token()
    process = await _spawn("sandbox", "--port", "0", "--token", token)
    try:
        url = await _read_until(process, URL_LINE)
        yield url, token
    finally:
        assert await _stop(process) == 0


def _bot_env(url: str, token: str, tmp_path: Path) -> dict[str, str]:
    return {
        "BEACON_BOT_TOKEN": token,
        "BEACON_API_URL": url,
        "BEACON_DATABASE": str(tmp_path / "data" / "beacon.db"),
        "BEACON_SECRET_KEY": generate_secret_key(),
        "BEACON_LOG_LEVEL": "INFO",
    }


async def _greeting_roundtrip(url: str, bot_id: int) -> None:
    async with SandboxClient(url) as sb:
        user = await sb.create_user("Reporter", language_code="en")
        sent = await sb.send_text(user["id"], "/start", bot_id=bot_id)
        reply = await sb.wait_for_message(
            user["id"], bot_id=bot_id, after_message_id=sent["message"]["message_id"], timeout=20
        )
        assert reply["text"].startswith("Hello. You can tell us here")


async def test_beacon_run_polls_a_beacon_sandbox_subprocess(
    sandbox_process: tuple[str, str], tmp_path: Path
) -> None:
    """`beacon run` in its own process answers /start through `beacon sandbox`; SIGTERM stops it cleanly."""
    url, token = sandbox_process
    bot = await _spawn("run", env=_bot_env(url, token, tmp_path), cwd=tmp_path)
    try:
        await _greeting_roundtrip(url, int(token.split(":")[0]))
    finally:
        output_code = await _stop(bot)
    assert output_code == 0
    assert (tmp_path / "data" / "beacon.db").exists(), "the database folder is created on first run"


async def test_beacon_run_in_webhook_mode_receives_updates_with_the_secret(
    sandbox_process: tuple[str, str], tmp_path: Path
) -> None:
    """`beacon run --webhook-url` registers the webhook; the sandbox delivers with the secret header."""
    url, token = sandbox_process
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/telegram"
    args = [
        "run",
        "--webhook-url",
        hook,
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--secret-token",
        "s3cr3t",
    ]
    bot = await _spawn(*args, env=_bot_env(url, token, tmp_path), cwd=tmp_path)
    try:
        async with SandboxClient(url) as sb:

            async def webhook_set() -> bool:
                calls = await sb.calls("setWebhook")
                return any(c["ok"] for c in calls)

            await sb.wait_until(webhook_set, timeout=20)
        await _greeting_roundtrip(url, int(token.split(":")[0]))
    finally:
        assert await _stop(bot) == 0


async def test_beacon_run_without_configuration_names_the_missing_variable(tmp_path: Path) -> None:
    """`beacon run` with no token prints one line naming BEACON_BOT_TOKEN and exits with status 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "BEACON_BOT_TOKEN" in lines[0]
    assert "Traceback" not in stderr.decode() + stdout.decode()


async def test_beacon_demo_serves_the_ui_and_stops_cleanly_on_ctrl_c() -> None:
    """`beacon demo` prints the page to open, the bot answers there, and Ctrl-C stops it, leaving nothing."""
    demo = await _spawn("demo", "--port", "0", env={"BEACON_SECRET_KEY": ""})
    try:
        page = await _read_until(demo, re.compile(r"Open (http://\S+)"))
    except BaseException:
        demo.kill()
        await demo.wait()
        raise
    url = URL_LINE.search(page)
    assert url is not None
    user_id = int(re.search(r"user=(\d+)", page).group(1))  # type: ignore[union-attr]
    async with SandboxClient(url.group(1)) as sb:
        bots = (await sb.state())["bots"]
        await _greeting_roundtrip(url.group(1), bots[0]["id"])
        assert any(u["id"] == user_id for u in (await sb.state())["users"])
    assert await _stop(demo, signal.SIGINT) == 0
    host, port = url.group(1).removeprefix("http://").split(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex((host, int(port))) != 0, "nothing may listen on the demo's port after Ctrl-C"
