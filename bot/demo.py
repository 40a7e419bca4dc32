"""`beacon demo`: the sandbox, a Beacon bot connected to it, a coordinators' forum group, one URL to open.

Everything runs in one process and one event loop, listens on loopback only, and stops cleanly on Ctrl-C
or SIGTERM. The database and secret key are ephemeral unless given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.app import build_application, configure_logging, start_application, stop_application
from bot.config import ConfigError, load_settings
from bot.keys import generate_secret_key
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

DEMO_BOT_USERNAME = "beacon_demo_bot"


@dataclass(frozen=True)
class DemoWorld:
    """The people and places the demo creates in the sandbox."""

    url: str
    bot_id: int
    reporter_id: int
    coordinator_id: int
    group_id: int

    @property
    def page(self) -> str:
        return f"{self.url}/?user={self.reporter_id}&group={self.group_id}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon demo",
        description="Run the local Telegram sandbox with a Beacon bot, a demo reporter and a coordinators' "
        "forum group, and print the address to open in a browser. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="sandbox port on 127.0.0.1 (default 8080; 0: any)"
    )
    parser.add_argument(
        "--database",
        type=Path,
        default=None,
        help="SQLite file to keep (default: an ephemeral one, deleted on exit)",
    )
    parser.add_argument(
        "--reporter-language",
        default="en",
        help="Telegram language_code of the demo reporter (default en; try vi or zh-hans)",
    )
    return parser


async def populate(client: SandboxClient, token: str, reporter_language: str) -> tuple[int, int, int, int]:
    """Create the demo bot, a reporter, a coordinator and the coordinators' forum group."""
    bot = await client.create_bot(token, username=DEMO_BOT_USERNAME, first_name="Beacon")
    reporter = await client.create_user("Demo Reporter", language_code=reporter_language)
    coordinator = await client.create_user(
        "Demo Coordinator", username="demo_coordinator", language_code="en"
    )
    group = await client.create_group(
        "Beacon coordinators (demo)",
        forum=True,
        admins=[coordinator["id"]],
        bots=[{"bot_id": bot["id"], "admin": True, "can_manage_topics": True}],
    )
    return int(bot["id"]), int(reporter["id"]), int(coordinator["id"]), int(group["id"])


async def run_demo(
    port: int,
    database: Path | None,
    reporter_language: str,
    stop: asyncio.Event,
    ready: asyncio.Future[DemoWorld] | None = None,
) -> None:
    """Run the whole demo until `stop` is set; `ready` receives the demo's addresses once it is up."""
    token = f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(24)}"
    with tempfile.TemporaryDirectory(prefix="beacon-demo-") as scratch:
        async with SandboxServer("127.0.0.1", port) as server, SandboxClient(server.url) as client:
            bot_id, reporter_id, coordinator_id, group_id = await populate(client, token, reporter_language)
            settings = load_settings(
                bot_token=token,
                api_url=server.url,
                database=database or Path(scratch) / "beacon-demo.db",
                secret_key=os.environ.get("BEACON_SECRET_KEY") or generate_secret_key(),
                coordinator_chat_id=group_id,
                admins=[coordinator_id],
            )
            configure_logging(settings.log_level)
            application = build_application(settings)
            try:
                await start_application(application)
                world = DemoWorld(server.url, bot_id, reporter_id, coordinator_id, group_id)
                if ready is not None and not ready.done():
                    ready.set_result(world)
                print(f"Beacon demo is running. Open {world.page}", flush=True)
                print("Press Ctrl-C to stop.", flush=True)
                await stop.wait()
            finally:
                await stop_application(application)
    print("Beacon demo stopped.", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `beacon demo`; return the exit status."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_demo(args.port, args.database, args.reporter_language, stop)

    try:
        asyncio.run(run())
    except ConfigError as error:
        print(f"beacon: configuration error: {error}", file=sys.stderr, flush=True)
        return 2
    except OSError as error:
        print(f"beacon demo: cannot start: {error.strerror or error}", file=sys.stderr, flush=True)
        return 1
    return 0
