"""BEACON_CONCURRENT_UPDATES > 1: reporters are served at the same time, each one's answers in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import build_application, start_application, stop_application
from bot.config import load_settings
from bot.keys import generate_secret_key
from bot.updates import PerChatUpdateProcessor
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.e2e.conftest import Harness, make_token
from tests.e2e.intake_flow import Plan, Walk, case_by_receipt, case_ids, new_reporter, today_utc

REPORTERS = 6


@pytest.fixture
async def concurrent(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Harness]:
    token = make_token()
    async with SandboxClient(sandbox.url) as sb:
        bot = await sb.create_bot(token, username="beacon_test_bot", first_name="Beacon")
        coordinator = await sb.create_user("Coordinator", language_code="en")
        group = await sb.create_group(
            "Coordinators",
            forum=True,
            admins=[coordinator["id"]],
            bots=[{"bot_id": bot["id"], "admin": True, "can_manage_topics": True}],
        )
        settings = load_settings(
            _env_file=None,
            bot_token=token,
            api_url=sandbox.url,
            database=tmp_path / "beacon.db",
            secret_key=generate_secret_key(),
            coordinator_chat_id=group["id"],
            admins=[coordinator["id"]],
            concurrent_updates=8,
        )
        app = build_application(settings)
        await start_application(app)
        try:
            yield Harness(sandbox, sb, app, settings, bot["id"], group["id"], coordinator["id"])
        finally:
            await stop_application(app)


async def test_reporters_filing_at_once_each_get_their_own_complete_case(concurrent: Harness) -> None:
    h = concurrent
    assert isinstance(h.app.update_processor, PerChatUpdateProcessor)
    plans = [
        replace(Plan(), details=(f"Report number {n}: building {n} on the river side.",), photos=0)
        for n in range(REPORTERS)
    ]
    reporters = [await new_reporter(h, "en") for _ in plans]
    walks = [Walk(r, plan) for r, plan in zip(reporters, plans, strict=True)]
    receipts = await asyncio.gather(*(walk.report() for walk in walks))

    assert len(await case_ids(h)) == REPORTERS
    for receipt, plan in zip(receipts, plans, strict=True):
        case = await case_by_receipt(h, receipt["text"])
        assert case.report == plan.report("en", today_utc())  # each answer landed in its own report
