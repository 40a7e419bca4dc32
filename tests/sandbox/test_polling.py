"""Long polling with getUpdates: waiting, offsets, limits, allowed_updates and conflicts."""

from __future__ import annotations

import asyncio
import time

from sandbox import SandboxClient
from tests.sandbox.conftest import BOT_ID, BotApi, drain


async def test_long_poll_returns_promptly_when_an_update_arrives(api: BotApi, sb: SandboxClient, alice):
    """A getUpdates waiting 10 s answers as soon as a human writes, well before the timeout."""
    await drain(api)
    started = time.monotonic()
    poll = asyncio.create_task(api.json("getUpdates", timeout=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await sb.send_text(alice["id"], "hello", bot_id=BOT_ID)
    updates = (await asyncio.wait_for(poll, 5)).result
    assert time.monotonic() - started < 3
    assert [u["message"]["text"] for u in updates] == ["hello"]


async def test_long_poll_returns_empty_after_the_timeout(api: BotApi):
    """With nothing to deliver, getUpdates with timeout=1 answers [] after about a second."""
    started = time.monotonic()
    answer = await api.form("getUpdates", timeout=1)
    elapsed = time.monotonic() - started
    assert answer.result == []
    assert 0.8 <= elapsed < 5


async def test_offset_confirms_updates_which_never_come_back(api: BotApi, sb: SandboxClient, alice):
    """Updates below offset are confirmed and never returned again, even without offset later."""
    for text in ("one", "two"):
        await sb.send_text(alice["id"], text, bot_id=BOT_ID)
    updates = await api.call("getUpdates")
    assert [u["message"]["text"] for u in updates] == ["/start", "one", "two"]
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids)
    assert ids[1] == ids[0] + 1
    rest = await api.call("getUpdates", offset=ids[1])
    assert [u["update_id"] for u in rest] == ids[1:]
    assert [u["update_id"] for u in await api.call("getUpdates")] == ids[1:]
    assert await api.call("getUpdates", offset=ids[-1] + 1) == []
    assert await api.call("getUpdates") == []


async def test_without_offset_updates_are_delivered_again(api: BotApi, alice):
    """An update not confirmed by offset is returned by the next getUpdates too."""
    first = await api.call("getUpdates")
    assert await api.call("getUpdates") == first


async def test_negative_offset_keeps_only_the_newest(api: BotApi, sb: SandboxClient, alice):
    """offset=-1 forgets all but the last update."""
    await sb.send_text(alice["id"], "last", bot_id=BOT_ID)
    updates = await api.call("getUpdates", offset=-1)
    assert [u["message"]["text"] for u in updates] == ["last"]


async def test_limit_caps_the_batch(api: BotApi, sb: SandboxClient, alice):
    """limit=2 returns the two oldest pending updates."""
    for text in ("a", "b", "c"):
        await sb.send_text(alice["id"], text, bot_id=BOT_ID)
    updates = (await api.form("getUpdates", limit=2)).result
    assert [u["message"]["text"] for u in updates] == ["/start", "a"]


async def test_chat_member_updates_come_only_when_asked(api: BotApi, sb: SandboxClient, forum):
    """chat_member updates are not sent by default, only after allowed_updates names them."""
    await drain(api)
    bob = await sb.create_user("Bob")
    await sb.set_member(forum["id"], bob["id"], "member")
    kinds = {k for u in await drain(api) for k in u if k != "update_id"}
    assert "chat_member" not in kinds
    assert "message" in kinds  # the new_chat_members service message

    await api.form("getUpdates", allowed_updates=["message", "chat_member"], timeout=0)
    await sb.set_member(forum["id"], bob["id"], "left")
    updates = await drain(api)
    members = [u["chat_member"] for u in updates if "chat_member" in u]
    assert len(members) == 1
    assert members[0]["old_chat_member"]["status"] == "member"
    assert members[0]["new_chat_member"]["status"] == "left"
    assert members[0]["new_chat_member"]["user"]["id"] == bob["id"]


async def test_allowed_updates_filters_out_kinds_not_named(api: BotApi, sb: SandboxClient, alice):
    """With allowed_updates ["callback_query"], a human's text creates no update."""
    await drain(api)
    await api.json("getUpdates", allowed_updates=["callback_query"], timeout=0)
    await sb.send_text(alice["id"], "ignored", bot_id=BOT_ID)
    assert await api.call("getUpdates") == []


async def test_second_concurrent_get_updates_makes_the_first_conflict(api: BotApi):
    """A second getUpdates while one is waiting makes the first answer 409 Conflict promptly."""
    started = time.monotonic()
    first = asyncio.create_task(api.json("getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(api.json("getUpdates", timeout=0))
    answer = await asyncio.wait_for(first, 10)
    assert answer.status == 409
    assert answer.description.startswith("Conflict: terminated by other getUpdates request")
    assert time.monotonic() - started < 3
    assert (await second).result == []


async def test_get_updates_while_a_webhook_is_set_conflicts(api: BotApi):
    """getUpdates with an active webhook answers 409; after deleteWebhook it works."""
    await api.call("setWebhook", url="http://127.0.0.1:9/hook")
    answer = await api.json("getUpdates")
    assert answer.status == 409
    assert "webhook is active" in answer.description
    await api.call("deleteWebhook")
    assert (await api.json("getUpdates")).ok


async def test_updates_older_than_24_hours_are_dropped(api: BotApi, sb: SandboxClient, alice):
    """Telegram keeps undelivered updates for 24 hours only (on the sandbox clock)."""
    await sb.advance_clock(24 * 3600 + 1)
    assert await api.call("getUpdates") == []


async def test_each_bot_has_its_own_queue(api: BotApi, other_api: BotApi, sb: SandboxClient, alice):
    """A human writing to one bot creates no update for the other bot."""
    assert await other_api.call("getUpdates") == []
    assert len(await api.call("getUpdates")) == 1
