"""Fixtures that run the real Beacon Application against the sandbox over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import BeaconApplication, build_application, start_application, stop_application
from bot.config import Settings, load_settings
from bot.keys import generate_secret_key
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer


@dataclass
class Harness:
    """A running sandbox, its client, and a running Beacon bot with its coordinators' group."""

    server: SandboxServer
    sb: SandboxClient
    app: BeaconApplication
    settings: Settings
    bot_id: int
    group_id: int
    coordinator_id: int


def make_token() -> str:
    return f"{secrets.randbelow(9 * 10**8) + 10**8}:{secrets.token_urlsafe(16)}"


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        yield server


@dataclass(frozen=True)
class CoordinatorsWorld:
    """A bot registered in the sandbox, a coordinator, and their group with the bot as an admin."""

    token: str
    bot_id: int
    coordinator_id: int
    group_id: int


async def coordinators_world(
    sb: SandboxClient, *, username: str = "beacon_test_bot", forum: bool = True
) -> CoordinatorsWorld:
    token = make_token()
    bot = await sb.create_bot(token, username=username, first_name="Beacon")
    coordinator = await sb.create_user("Coordinator", language_code="en")
    group = await sb.create_group(
        "Coordinators",
        forum=forum,
        admins=[coordinator["id"]],
        bots=[{"bot_id": bot["id"], "admin": True, "can_manage_topics": True}],
    )
    return CoordinatorsWorld(token, bot["id"], coordinator["id"], group["id"])


@asynccontextmanager
async def running_bot(sandbox: SandboxServer, database: Path, **settings: Any) -> AsyncIterator[Harness]:
    """A Beacon bot running against `sandbox` with its coordinators' forum group, its database at
    `database`; `settings` override the defaults (e.g. ``http_client="aiohttp"``)."""
    async with SandboxClient(sandbox.url) as sb:
        world = await coordinators_world(sb)
        options: dict[str, Any] = {
            "bot_token": world.token,
            "api_url": sandbox.url,
            "database": database,
            "secret_key": generate_secret_key(),
            "coordinator_chat_id": world.group_id,
            "admins": [world.coordinator_id],
        }
        configured = load_settings(_env_file=None, **{**options, **settings})
        app = build_application(configured)
        await start_application(app)
        h = Harness(sandbox, sb, app, configured, world.bot_id, world.group_id, world.coordinator_id)
        try:
            yield h
        finally:
            # A test may have restarted the bot (see `restart_bot`): stop whichever one runs now.
            await stop_application(h.app)


@pytest.fixture
async def harness(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(sandbox, tmp_path / "beacon.db") as h:
        yield h


async def restart_bot(h: Harness) -> None:
    """Stop the running Application and start a new one with the same settings (database, secret key)."""
    await stop_application(h.app)
    h.app = build_application(h.settings)
    await start_application(h.app)


# How often `handled_everything_sent` asks the Bot API whether the bot has fetched everything.
_FETCHED_POLL_SECONDS = 0.02


async def handled_everything_sent(app: BeaconApplication, timeout: float = 30.0) -> None:
    """Return once the bot has handled every update sent to it so far, each through its last handler
    group (the write-through persistence flush included); TimeoutError after `timeout` seconds.

    The barrier for tests that check what the bot did or stored: updates of different chats are handled
    at once (BEACON_CONCURRENT_UPDATES), so neither the bot's answer to one update nor an update of another
    chat shows that an update was handled through. First the Bot API holds no update the bot has not
    fetched (python-telegram-bot confirms a batch with its next getUpdates, after queueing the batch), then
    the application has finished every queued update (``update_queue.join()``, the wait
    ``Application.stop`` relies on: it marks an update done once every handler group ran).
    """
    async with asyncio.timeout(timeout):
        for _ in range(int(timeout / _FETCHED_POLL_SECONDS) + 1):
            if not (await app.bot.get_webhook_info()).pending_update_count:
                break
            await asyncio.sleep(_FETCHED_POLL_SECONDS)
        else:
            raise TimeoutError(f"the bot did not fetch its updates within {timeout} s")
        await app.update_queue.join()
