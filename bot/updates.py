"""Update processing: different chats concurrently, each chat's updates strictly in order.

python-telegram-bot handles one update at a time by default, so every reporter waits for every other
reporter's database commits and Bot API round trips. `PerChatUpdateProcessor` lets updates of different
chats overlap while the updates of one chat (one reporter's conversation, one coordinators' group) still
run one after another in the order Telegram sent them, which the conversation's state machine relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["PerChatUpdateProcessor", "ordering_key"]


def ordering_key(update: object) -> int | None:
    """The chat whose updates must stay in order (else the user); None for an update of neither."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """At most `max_concurrent_updates` updates at once; never two of the same chat at once.

    Updates wait for their chat's lock in arrival order (asyncio locks are fair), so one chat's updates
    are handled in the order they came. A lock is dropped as soon as nobody holds or waits for it.
    """

    __slots__ = ("_locks", "_waiting")

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = ordering_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    @property
    def chats_in_progress(self) -> int:
        """How many chats have an update being handled or waiting (for tests and diagnostics)."""
        return len(self._locks)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: the locks go with their updates."""
