"""bot.persistence: a user is always written from the application's live data, never from an older copy
(python-telegram-bot's periodic flush hands in a deep copy taken before it awaited other writes)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.persistence import SQLitePersistence


class Store:
    """Records what would be written, serialised at the moment of the call as the real store does."""

    def __init__(self) -> None:
        self.written: list[tuple[int, str]] = []

    async def load_user_data(self) -> dict[int, dict[str, Any]]:
        return {}

    async def save_user_data(self, user_id: int, data: dict[str, Any], now: datetime) -> None:
        self.written.append((user_id, json.dumps(data)))

    async def drop_user_data(self, user_id: int) -> None:
        return None


def persistence(store: Store) -> SQLitePersistence:
    async def opened() -> Store:
        return store

    return SQLitePersistence(opened)


async def test_a_stale_copy_is_not_written_over_newer_live_data() -> None:
    store = Store()
    live: dict[int, dict[str, Any]] = {5: {"step": "phone", "noted": "typed words"}}
    p = persistence(store)
    p.follow(live)
    stale = {"step": "passport"}  # copied before the reporter's last answer
    await p.update_user_data(5, stale)
    assert store.written == [(5, json.dumps({"step": "phone", "noted": "typed words"}))]


async def test_without_live_data_the_given_data_is_written() -> None:
    store = Store()
    p = persistence(store)
    await p.update_user_data(5, {"step": "passport"})
    p.follow({})
    await p.update_user_data(6, {"step": "where"})  # a user the application no longer holds
    assert store.written == [(5, json.dumps({"step": "passport"})), (6, json.dumps({"step": "where"}))]
