"""Faults with a `duration`: the Bot API down (or one method failing) for a window of real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from sandbox import SandboxClient
from sandbox.client import SandboxError
from tests.sandbox.conftest import OTHER_BOT_ID, BotApi


async def test_an_outage_fails_every_call_until_it_ends_then_calls_work(api: BotApi, sb: SandboxClient):
    """A "*" fault with a duration answers every call of every method, however many, until its window
    ends (count is ignored); then the same calls succeed and the fault is gone from the list."""
    await sb.inject_fault("*", "bad_gateway", duration=1.5)
    started = time.monotonic()
    statuses = []
    for method in ("getMe", "getWebhookInfo", "getUpdates", "getMe", "getMyCommands"):
        statuses.append((await api.json(method)).status)
    assert statuses == [502] * 5
    assert time.monotonic() - started < 1.5, "the calls were made inside the window"
    (listed,) = await sb.faults()
    assert listed["kind"] == "bad_gateway"
    assert 0 < listed["remaining_seconds"] <= 1.5
    await asyncio.sleep(max(0.0, started + 1.6 - time.monotonic()))
    assert (await api.json("getMe")).ok
    assert await sb.faults() == []


async def test_an_outage_ignores_the_sandbox_clock(api: BotApi, sb: SandboxClient):
    """Moving the sandbox clock forward does not end an outage: its window is real time."""
    await sb.inject_fault("*", "server_error", duration=30)
    await sb.advance_clock(3600)
    assert (await api.json("getMe")).status == 500
    await sb.clear_faults()
    assert (await api.json("getMe")).ok


async def test_an_outage_keeps_its_filters(api: BotApi, other_api: BotApi, sb: SandboxClient):
    """A timed fault still matches only its method and bot."""
    await sb.inject_fault("getMe", "server_error", duration=30, bot_id=OTHER_BOT_ID)
    assert (await api.json("getMe")).ok
    assert (await other_api.json("getWebhookInfo")).ok
    assert [(await other_api.json("getMe")).status for _ in range(3)] == [500, 500, 500]


async def test_outage_calls_are_logged_as_failed(api: BotApi, sb: SandboxClient):
    """Every call refused during an outage is in the calls log, not ok, with the fault's status."""
    await sb.inject_fault("*", "bad_gateway", duration=30)
    for _ in range(3):
        await api.json("getMe")
    calls = await sb.calls("getMe")
    assert [(c["ok"], c["error_code"]) for c in calls[-3:]] == [(False, 502)] * 3


@pytest.mark.parametrize("duration", [0, -1, 3601])
async def test_an_outage_must_be_bounded(sb: SandboxClient, duration):
    """A duration of zero, below zero or over an hour is refused."""
    with pytest.raises(SandboxError, match="duration"):
        await sb.inject_fault("*", "bad_gateway", duration=duration)
