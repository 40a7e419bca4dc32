"""The job that drains the outbox into the coordinators' chat, one alert at a time, most urgent first."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from bot.services.alerts import AlertDispatcher, RoundResult

_LOG = logging.getLogger(__name__)

ALERTS_KEY = "beacon.alerts"
# Alerts delivered per job run before yielding to other jobs; the next run continues.
MAX_PER_RUN = 60


@dataclass
class AlertRunner:
    """The dispatcher and the lock that keeps delivery rounds from overlapping."""

    dispatcher: AlertDispatcher
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def deliver_alerts(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delivers due alerts one by one, re-reading the queue each time so a new P1 goes next."""
    runner = context.bot_data.get(ALERTS_KEY)
    if not isinstance(runner, AlertRunner) or runner.lock.locked():
        return
    async with runner.lock:
        for _round in range(MAX_PER_RUN):
            result = await runner.dispatcher.run_round(limit=1)
            if result == RoundResult() or result.paused_for:
                return
