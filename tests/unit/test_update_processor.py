"""bot.updates.PerChatUpdateProcessor: different chats at once, one chat's updates strictly in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from telegram import Chat, Message, Update, User

from bot.updates import PerChatUpdateProcessor, ordering_key

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def update_in(chat_id: int, update_id: int) -> Update:
    user = User(chat_id, "Reporter", is_bot=False)
    chat = Chat(chat_id, Chat.PRIVATE)
    return Update(update_id, message=Message(update_id, NOW, chat, from_user=user, text="hi"))


async def test_updates_of_different_chats_are_handled_at_the_same_time():
    processor = PerChatUpdateProcessor(8)
    both_started = asyncio.Event()
    started: list[int] = []

    async def handle(chat_id: int) -> None:
        started.append(chat_id)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=5)  # would time out if run one at a time

    async with processor:
        await asyncio.gather(
            processor.process_update(update_in(1, 1), handle(1)),
            processor.process_update(update_in(2, 2), handle(2)),
        )
    assert sorted(started) == [1, 2]


async def test_one_chats_updates_never_overlap_and_keep_their_order():
    """The first update is slow; the two after it still wait for it and run in arrival order."""
    processor = PerChatUpdateProcessor(8)
    events: list[str] = []

    async def handle(name: str, pause: float) -> None:
        events.append(f"start {name}")
        await asyncio.sleep(pause)
        events.append(f"end {name}")

    async with processor:
        await asyncio.gather(
            processor.process_update(update_in(7, 1), handle("a", 0.05)),
            processor.process_update(update_in(7, 2), handle("b", 0)),
            processor.process_update(update_in(7, 3), handle("c", 0)),
        )
    assert events == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert processor.chats_in_progress == 0  # locks are dropped once nobody waits


async def test_a_failing_update_releases_its_chat():
    processor = PerChatUpdateProcessor(4)

    async def fail() -> None:
        raise RuntimeError("handler failed")

    async def succeed() -> str:
        return "ok"

    async with processor:
        results = await asyncio.gather(
            processor.process_update(update_in(9, 1), fail()),
            processor.process_update(update_in(9, 2), succeed()),
            return_exceptions=True,
        )
    assert isinstance(results[0], RuntimeError)
    assert results[1] is None
    assert processor.chats_in_progress == 0


def test_updates_are_ordered_by_chat_then_user():
    assert ordering_key(update_in(42, 1)) == 42
    assert ordering_key(Update(5)) is None
    assert ordering_key("not an update") is None
