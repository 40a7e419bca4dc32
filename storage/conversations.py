"""The SQLite side of python-telegram-bot persistence: conversation states and user data, encrypted JSON.

Keys hold Telegram chat and user ids, so a row is found by a keyed HMAC of its key (``lookup``) and the
key itself is stored only encrypted. Values are JSON, never pickle: a dict's keys come back as strings,
tuples as lists. Every ciphertext is bound to its table, column and lookup.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import aiosqlite

from bot.crypto import DecryptionError, Keyring, compact_json
from storage.db import StorageError, transaction, write_one
from storage.timestamps import to_db_time

__all__ = ["ConversationKey", "ConversationStore", "UnsupportedValue"]

ConversationKey = tuple[int | str, ...]

# Blind-index namespaces: the same text never yields the same lookup in two tables.
_CONVERSATION_INDEX = "conversations"
_USER_DATA_INDEX = "user_data"


class UnsupportedValue(StorageError):
    """A key or value cannot be stored as JSON (e.g. a set, an object, NaN); nothing was written."""


def _check_key(key: tuple[Any, ...]) -> ConversationKey:
    if not all(isinstance(part, int | str) and not isinstance(part, bool) for part in key):
        raise UnsupportedValue("a conversation key holds only ints and strings")
    return key


def _conversation_text(name: str, key: ConversationKey) -> str:
    """The canonical text of (name, key) that the lookup is computed over: JSON, so it is unambiguous."""
    return json.dumps([name, list(key)], ensure_ascii=False, separators=(",", ":"))


class ConversationStore:
    """Encrypted conversation states and user data for ``bot.persistence``, written through on each change."""

    def __init__(self, conn: aiosqlite.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring
        # By lookup: a digest of the user data last written and that row's encrypted user id. Lets a save
        # of unchanged data (python-telegram-bot's periodic flush, a second flush in one update) be
        # skipped, and spares re-encrypting the user id. In memory only; this process is the only writer.
        self._written: dict[str, tuple[bytes, bytes]] = {}

    # --- conversations -------------------------------------------------------------------------------

    async def load_conversations(self, name: str) -> dict[ConversationKey, object]:
        """Return every stored state of the conversation ``name``, by key, decrypted.

        Raises ``bot.crypto.DecryptionError`` if a row does not open, ``StorageError`` if its key is not
        a list of ints and strings.
        """
        rows = await self._conn.execute_fetchall(
            "SELECT lookup, key, state FROM conversations WHERE name = ?", (name,)
        )
        states: dict[ConversationKey, object] = {}
        for lookup, key_blob, state_blob in rows:
            key = self._open_key("conversations", lookup, key_blob)
            states[key] = self._keyring.decrypt_json(
                state_blob, table="conversations", column="state", row_id=lookup
            )
        return states

    async def save_conversation(
        self, name: str, key: ConversationKey, state: object | None, now: datetime
    ) -> None:
        """Store the conversation's new ``state`` for ``key`` (replacing the old one); ``None`` deletes it.

        Raises ``UnsupportedValue`` if the key or state is not JSON-serialisable.
        """
        key = _check_key(key)
        lookups = self._keyring.blind_indexes(_CONVERSATION_INDEX, _conversation_text(name, key))
        current = lookups[0]
        row: tuple[str, str, bytes, bytes, str] | None = None
        if state is not None:
            try:
                state_blob = self._keyring.encrypt_json(
                    state, table="conversations", column="state", row_id=current
                )
            except (TypeError, ValueError) as exc:
                raise UnsupportedValue(f"conversation {name!r} state is not JSON: {exc}") from None
            key_blob = self._keyring.encrypt_json(
                list(key), table="conversations", column="key", row_id=current
            )
            row = (current, name, key_blob, state_blob, to_db_time(now))
        async with transaction(self._conn):
            # Rows written under an earlier secret are found by their old lookups and replaced.
            await self._conn.executemany(
                "DELETE FROM conversations WHERE lookup = ?", [(lookup,) for lookup in lookups]
            )
            if row is not None:
                await self._conn.execute(
                    "INSERT INTO conversations (lookup, name, key, state, updated_at) VALUES (?, ?, ?, ?, ?)",
                    row,
                )

    async def idle_conversations(self, name: str, before: datetime) -> list[ConversationKey]:
        """Return the keys of conversations ``name`` last changed before ``before``, oldest first."""
        rows = await self._conn.execute_fetchall(
            "SELECT lookup, key FROM conversations WHERE name = ? AND updated_at < ? ORDER BY updated_at",
            (name, to_db_time(before)),
        )
        return [self._open_key("conversations", lookup, blob) for lookup, blob in rows]

    # --- user data -----------------------------------------------------------------------------------

    async def load_user_data(self) -> dict[int, dict[str, Any]]:
        """Return every user's stored data, by Telegram user id, decrypted."""
        rows = await self._conn.execute_fetchall("SELECT lookup, user_key, data FROM user_data")
        return {
            self._open_user_id(lookup, user_blob): self._open_user_data(lookup, data_blob)
            for lookup, user_blob, data_blob in rows
        }

    async def save_user_data(self, user_id: int, data: dict[str, Any], now: datetime) -> None:
        """Store ``data`` as the user's data, replacing what was there; unchanged data is not written again.

        The data is serialised before the first ``await``, so the caller may go on changing its dict.
        Raises ``UnsupportedValue`` if ``data`` is not JSON-serialisable.
        """
        lookups = self._keyring.blind_indexes(_USER_DATA_INDEX, str(user_id))
        current = lookups[0]
        try:
            text = compact_json(data)
        except (TypeError, ValueError) as exc:
            raise UnsupportedValue(f"user data is not JSON: {exc}") from None
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        written = self._written.get(current)
        if written is not None and written[0] == digest:
            return
        data_blob = self._keyring.encrypt_text(text, table="user_data", column="data", row_id=current)
        if written is not None:
            user_blob = written[1]
        else:
            user_blob = self._keyring.encrypt_text(
                str(user_id), table="user_data", column="user_key", row_id=current
            )
        row = (current, user_blob, data_blob, to_db_time(now))
        # Forgotten until the write is known to have landed: a failed or cancelled write is redone.
        self._written.pop(current, None)
        if len(lookups) == 1:
            await write_one(
                self._conn,
                "INSERT INTO user_data (lookup, user_key, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (lookup) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                row,
            )
        else:
            async with transaction(self._conn):
                # Rows written under an earlier secret are found by their old lookups and replaced.
                await self._conn.executemany(
                    "DELETE FROM user_data WHERE lookup = ?", [(lookup,) for lookup in lookups]
                )
                await self._conn.execute(
                    "INSERT INTO user_data (lookup, user_key, data, updated_at) VALUES (?, ?, ?, ?)", row
                )
        self._written[current] = (digest, user_blob)

    async def drop_user_data(self, user_id: int) -> None:
        """Delete the user's data (nothing happens if there is none)."""
        lookups = self._keyring.blind_indexes(_USER_DATA_INDEX, str(user_id))
        self._written.pop(lookups[0], None)
        async with transaction(self._conn):
            await self._conn.executemany(
                "DELETE FROM user_data WHERE lookup = ?", [(lookup,) for lookup in lookups]
            )

    async def idle_users(self, before: datetime) -> list[int]:
        """Return the ids of users whose data last changed before ``before``, oldest first (to time out)."""
        rows = await self._conn.execute_fetchall(
            "SELECT lookup, user_key FROM user_data WHERE updated_at < ? ORDER BY updated_at",
            (to_db_time(before),),
        )
        return [self._open_user_id(lookup, blob) for lookup, blob in rows]

    # --- helpers -------------------------------------------------------------------------------------

    def _open_key(self, table: str, lookup: str, blob: bytes) -> ConversationKey:
        parts = self._keyring.decrypt_json(blob, table=table, column="key", row_id=lookup)
        if not isinstance(parts, list):
            raise DecryptionError(f"{table}.key is not a list")
        return _check_key(tuple(parts))

    def _open_user_id(self, lookup: str, blob: bytes) -> int:
        text = self._keyring.decrypt_text(blob, table="user_data", column="user_key", row_id=lookup)
        try:
            return int(text)
        except ValueError:
            raise DecryptionError("user_data.user_key is not an integer") from None

    def _open_user_data(self, lookup: str, blob: bytes) -> dict[str, Any]:
        data = self._keyring.decrypt_json(blob, table="user_data", column="data", row_id=lookup)
        if not isinstance(data, dict):
            raise DecryptionError("user_data.data is not an object")
        return data
