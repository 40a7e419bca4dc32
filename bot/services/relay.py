"""The anonymous relay: a coordinator's reply reaches the reporter through the bot, as the reporter asked.

Neither side learns who the other is: the reporter sees "the team", never a coordinator's name; the
coordinators never see the reporter's account. Whether a reply goes out at once, waits for the reporter's
next `/status`, or not at all follows the contact preference given in the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Protocol

from bot.domain.models import ContactPreference
from bot.domain.records import Media, TeamMessage
from bot.domain.workflow import Action
from bot.services.casework import CaseworkService, UnknownCase

MAX_REPLY = 3500  # room for the translated frame around it within Telegram's 4096 characters


class Delivery(StrEnum):
    """What became of a reply, as the coordinator is told."""

    SENT = "sent"
    HELD = "held"  # the reporter asked to be written to only when they check in
    UNREACHABLE = "unreachable"  # could not be delivered now (blocked the bot): held for /status
    NO_CONTACT = "no_contact"  # the reporter asked not to be contacted
    WITHDRAWN = "withdrawn"  # the reporter withdrew: nobody to write to


class RelayPort(Protocol):
    async def hold(self, case_id: str, text: str, actor_id: int, media: Media | None = None) -> str: ...

    async def record_sent(self, case_id: str, actor_id: int) -> None: ...

    async def waiting(self, case_id: str) -> list[tuple[str, TeamMessage]]: ...

    async def erase(self, message_ids: Sequence[str]) -> None: ...


class ContactPort(Protocol):
    async def contact_chat_id(self, case_id: str) -> int | None: ...


# Sends `text` (and sanitised media, if any) to a reporter's chat in `language`; False when unreachable.
Sender = Callable[[int, str, str, Media | None], Awaitable[bool]]


class RelayService:
    """Coordinator → reporter messages, role-checked and following the contact preference."""

    def __init__(self, casework: CaseworkService, contacts: ContactPort, store: RelayPort) -> None:
        self.casework = casework
        self.contacts = contacts
        self.store = store

    async def reply(
        self, actor: int, case_id: str, text: str, send: Sender, media: Media | None = None
    ) -> Delivery:
        """Relay `text` (and a sanitised photo or voice note) to the reporter of `case_id`.

        Raises NotAllowed, UnknownCase, or ValueError for an empty reply.
        """
        text = text.strip()[:MAX_REPLY]
        if not text and media is None:
            raise ValueError("empty reply")
        case = await self.casework.case(actor, case_id)
        await self.casework.require(actor, Action.REPLY)
        if case.withdrawn:
            return Delivery.WITHDRAWN
        preference = case.report.contact
        if preference is None or preference is ContactPreference.NO:
            return Delivery.NO_CONTACT
        if preference is ContactPreference.ON_CHECK_IN:
            await self.store.hold(case_id, text, actor, media)
            return Delivery.HELD
        chat_id = await self.contacts.contact_chat_id(case_id)
        if chat_id is not None and await send(chat_id, text, case.report.language, media):
            await self.store.record_sent(case_id, actor)
            return Delivery.SENT
        await self.store.hold(case_id, text, actor, media)
        return Delivery.UNREACHABLE


async def collect_held(store: RelayPort, case_id: str) -> list[TeamMessage]:
    """The messages held for a case (for its reporter's /status), erased once collected."""
    waiting = await store.waiting(case_id)
    await store.erase([message_id for message_id, _ in waiting])
    return [message for _, message in waiting]


__all__ = ["Delivery", "RelayService", "UnknownCase", "collect_held"]
