"""Write-through persistence of reporters' in-progress conversations on SQLite, encrypted, without pickle.

python-telegram-bot flushes persistence every `update_interval` seconds, so a crash could lose the last
minute of answers. Beacon flushes after every update instead (`flush_after_update`, registered last in
the composition root; `handlers.common.save_now`, without python-telegram-bot's deep copy) and keeps the
periodic flush only as a safety net (the store skips data that has not changed since it was written).
Only `user_data` is persisted: it holds the conversation step and the draft report. The store encrypts
values and keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from telegram import Update
from telegram.ext import BasePersistence, ContextTypes, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from handlers.common import save_now

UserData = dict[str, Any]


class UserDataStore(Protocol):
    """The SQLite side (storage.conversations.ConversationStore)."""

    async def load_user_data(self) -> dict[int, dict[str, Any]]: ...

    async def save_user_data(self, user_id: int, data: dict[str, Any], now: datetime) -> None: ...

    async def drop_user_data(self, user_id: int) -> None: ...


class SQLitePersistence(BasePersistence[UserData, dict[Any, Any], dict[Any, Any]]):
    """user_data persistence over an async store obtained lazily (the database opens at start-up)."""

    def __init__(self, store: Callable[[], Awaitable[UserDataStore]], update_interval: float = 60) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=False, user_data=True, callback_data=False),
            update_interval=update_interval,
        )
        self._store = store
        # The application's live user data (``follow``): what is written, rather than the copy handed in.
        self._live: Mapping[int, UserData] | None = None
        # Users whose last write failed (disk full, database locked or read-only). python-telegram-bot
        # forgets that a user needs saving once it has tried, so `flush_after_update` marks them again.
        self.unsaved: set[int] = set()

    async def get_user_data(self) -> dict[int, UserData]:
        return await (await self._store()).load_user_data()

    def follow(self, user_data: Mapping[int, UserData]) -> None:
        """Write the application's live data whenever a user is saved, never an older copy of it.

        python-telegram-bot's periodic flush deep-copies a user's data and writes the copy after awaiting
        other writes; a write-through of newer data in between would otherwise be overwritten by it. Each
        write serialises the live data when it starts, and writes land in that order.
        """
        self._live = user_data

    async def update_user_data(self, user_id: int, data: UserData) -> None:
        live = self._live.get(user_id) if self._live is not None else None
        try:
            store = await self._store()
            await store.save_user_data(user_id, data if live is None else live, datetime.now(UTC))
        except Exception:
            self.unsaved.add(user_id)
            raise
        self.unsaved.discard(user_id)

    async def drop_user_data(self, user_id: int) -> None:
        await (await self._store()).drop_user_data(user_id)
        self.unsaved.discard(user_id)

    async def refresh_user_data(self, user_id: int, user_data: UserData) -> None:
        """Nothing to refresh: this process is the only writer."""

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Chat data is not persisted."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Chat data is not persisted."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Chat data is not persisted."""

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Bot data is not persisted: it holds live resources."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Bot data is not persisted."""

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        """Arbitrary callback data is not used."""

    async def get_conversations(self, name: str) -> ConversationDict:
        return {}

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        """Beacon keeps its conversation step in user_data, not in a ConversationHandler."""

    async def flush(self) -> None:
        """Everything is written through; nothing is buffered here."""


async def flush_after_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Writes the user data this update touched to the database before the next update is handled."""
    user = update.effective_user
    user_ids = {user.id} if user is not None else set()
    persistence = context.application.persistence
    if isinstance(persistence, SQLitePersistence):
        # Failed earlier: tried again now, and at every flush until it is written, rather than only when
        # that reporter next writes (a stop in between would have lost their latest answers).
        user_ids |= persistence.unsaved
    await save_now(context, sorted(user_ids))
