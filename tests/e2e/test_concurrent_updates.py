"""BEACON_CONCURRENT_UPDATES > 1: reporters are served at the same time, each one's answers in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.updates import PerChatUpdateProcessor
from sandbox.server import SandboxServer
from tests.e2e.conftest import Harness, running_bot
from tests.e2e.intake_flow import Plan, Walk, case_by_receipt, case_ids, new_reporter, today_utc

REPORTERS = 6


@pytest.fixture
async def concurrent(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(sandbox, tmp_path / "beacon.db", concurrent_updates=8) as h:
        yield h


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
