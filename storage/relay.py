"""Messages from the team to a reporter: held (encrypted) until the reporter checks in, then erased.

Messages sent at once are not stored at all (Beacon keeps the minimum); either way the coordinator's reply
is written to the audit trail as an action, without its text.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

import aiosqlite

from bot.crypto import Keyring
from bot.domain.records import Media, MediaKind, TeamMessage
from bot.domain.workflow import Action
from storage.audit import append_audit
from storage.db import transaction
from storage.timestamps import to_db_time, utc_now

__all__ = ["RelayStore"]

_TABLE = "reporter_messages"
_COLUMN = "text"
_MEDIA = "media"


class RelayStore:
    """Held messages for reporters, and the audit of every reply."""

    def __init__(
        self, conn: aiosqlite.Connection, keyring: Keyring, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._conn = conn
        self._keyring = keyring
        self._clock = clock

    async def hold(self, case_id: str, text: str, actor_id: int, media: Media | None = None) -> str:
        """Keep a message until the reporter checks in; the reply is audited in the same transaction."""
        message_id = secrets.token_hex(12)
        ciphertext = self._keyring.encrypt_text(text, table=_TABLE, column=_COLUMN, row_id=message_id)
        sealed = (
            None
            if media is None
            else self._keyring.encrypt(media.content, table=_TABLE, column=_MEDIA, row_id=message_id)
        )
        now = self._clock()
        async with transaction(self._conn):
            await self._conn.execute(
                "INSERT INTO reporter_messages (id, case_id, created_at, ciphertext, media_kind, media_mime, "
                "media) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    case_id,
                    to_db_time(now),
                    ciphertext,
                    None if media is None else media.kind.value,
                    None if media is None else media.mime_type,
                    sealed,
                ),
            )
            await append_audit(
                self._conn, at=now, actor_id=actor_id, action=Action.REPLY.value, case_id=case_id,
                details={"delivery": "held"},
            )  # fmt: skip
        return message_id

    async def record_sent(self, case_id: str, actor_id: int) -> None:
        """Audit a reply that was delivered at once (its text is not kept)."""
        async with transaction(self._conn):
            await append_audit(
                self._conn, at=self._clock(), actor_id=actor_id, action=Action.REPLY.value, case_id=case_id,
                details={"delivery": "sent"},
            )  # fmt: skip

    async def waiting(self, case_id: str) -> list[tuple[str, TeamMessage]]:
        """(id, message) of the messages held for a case, oldest first, decrypted."""
        rows = await self._conn.execute_fetchall(
            "SELECT id, ciphertext, media_kind, media_mime, media FROM reporter_messages WHERE case_id = ? "
            "ORDER BY created_at, rowid",
            (case_id,),
        )
        held = []
        for message_id, ciphertext, kind, mime, sealed in rows:
            row_id = str(message_id)
            text = self._keyring.decrypt_text(ciphertext, table=_TABLE, column=_COLUMN, row_id=row_id)
            media = None
            if kind is not None and sealed is not None:
                content = self._keyring.decrypt(sealed, table=_TABLE, column=_MEDIA, row_id=row_id)
                media = Media(kind=MediaKind(kind), content=content, mime_type=str(mime))
            held.append((row_id, TeamMessage(text=text, media=media)))
        return held

    async def erase(self, message_ids: Sequence[str]) -> None:
        """Erase messages once the reporter has been shown them."""
        if not message_ids:
            return
        async with transaction(self._conn):
            await self._conn.executemany(
                "DELETE FROM reporter_messages WHERE id = ?", [(m,) for m in message_ids]
            )
