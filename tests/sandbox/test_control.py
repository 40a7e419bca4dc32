"""The control API itself: clock, reset, state, calls log, events and its error answers."""

from __future__ import annotations

import asyncio
import time

import pytest

from sandbox import SandboxClient, SandboxServer
from sandbox.client import SandboxError
from tests.sandbox.conftest import BOT_ID, OTHER_BOT_ID, BotApi


async def test_clock_get_reports_now_and_post_advances_it(sb: SandboxClient, api: BotApi, alice):
    """GET /_sandbox/clock is about wall time; POST {"advance"} moves it and message dates follow."""
    now = await sb.now()
    assert abs(now - time.time()) < 5
    later = await sb.advance_clock(3600)
    assert later - now >= 3600
    assert abs(await sb.now() - later) < 5
    message = await api.call("sendMessage", chat_id=alice["id"], text="x")
    assert message["date"] >= int(now) + 3600


async def test_clock_never_goes_back(sb: SandboxClient):
    """A negative advance is refused."""
    with pytest.raises(SandboxError, match="only moves forward"):
        await sb.advance_clock(-1)


async def test_reset_forgets_the_world_but_keeps_bots(sb: SandboxClient, api: BotApi, alice):
    """reset removes users, chats, updates and the clock offset, and keeps registered bots."""
    await sb.advance_clock(1000)
    await sb.inject_fault("getMe", "server_error")
    await sb.reset()
    state = await sb.state()
    assert state["users"] == []
    assert state["chats"] == []
    assert {b["id"] for b in state["bots"]} == {BOT_ID, OTHER_BOT_ID}
    assert abs(await sb.now() - time.time()) < 5
    assert await sb.faults() == []
    assert await api.call("getUpdates") == []
    assert (await api.json("sendMessage", chat_id=alice["id"], text="x")).description == (
        "Bad Request: chat not found"
    )


async def test_reset_without_keep_bots_removes_tokens(sb: SandboxClient, api: BotApi):
    """reset with keep_bots false unregisters every token: they get 401."""
    await sb.reset(keep_bots=False)
    assert (await api.json("getMe")).status == 401
    assert (await sb.state())["bots"] == []


async def test_state_lists_users_groups_and_private_chats(sb: SandboxClient, forum, alice):
    """state shows users, groups with members and topics, and started private chats."""
    await sb.create_topic(forum["id"], "T")
    state = await sb.state()
    assert [u["id"] for u in state["users"]] == [alice["id"]]
    group = next(c for c in state["chats"] if c["id"] == forum["id"])
    assert group["members"] == {str(alice["id"]): "creator", str(BOT_ID): "administrator"}
    assert group["topics"][0]["name"] == "T"
    private = next(c for c in state["chats"] if c["type"] == "private")
    assert private == {"id": alice["id"], "type": "private", "user_id": alice["id"], "bot_id": BOT_ID}


async def test_calls_log_records_method_ok_and_error_code_in_order(sb: SandboxClient, api: BotApi, alice):
    """Every Bot API call is logged in order with method, chat_id, ok and error_code."""
    await api.json("getMe")
    await api.form("sendMessage", chat_id=alice["id"], text="x")
    await api.json("sendMessage", chat_id=-5, text="x")
    calls = await sb.calls()
    assert [(c["method"], c["ok"], c["error_code"]) for c in calls] == [
        ("getMe", True, None),
        ("sendMessage", True, None),
        ("sendMessage", False, 400),
    ]
    seqs = [c["seq"] for c in calls]
    assert seqs == sorted(seqs)
    assert calls[1]["chat_id"] == str(alice["id"])
    assert calls[2]["bot_id"] == BOT_ID


async def test_calls_log_filters_by_method_bot_and_after(sb: SandboxClient, api: BotApi, other_api: BotApi):
    """The calls log can be filtered by method, bot_id and a sequence number to start after."""
    await api.json("getMe")
    await other_api.json("getMe")
    await api.json("getWebhookInfo")
    assert len(await sb.calls("getme")) == 2
    assert [c["method"] for c in await sb.calls(bot_id=OTHER_BOT_ID)] == ["getMe"]
    first = (await sb.calls())[0]["seq"]
    assert [c["method"] for c in await sb.calls(after=first)] == ["getMe", "getWebhookInfo"]


async def test_events_wake_up_on_a_change(sb: SandboxClient):
    """/_sandbox/events waits until the world's version passes `after` and answers promptly on a change."""
    version = (await sb.state())["version"]
    started = time.monotonic()
    waiting = asyncio.create_task(sb.wait_for_change(version, timeout=10))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await sb.create_user("Carol")
    assert await asyncio.wait_for(waiting, 5) > version
    assert time.monotonic() - started < 3


async def test_events_answer_at_once_when_already_newer(sb: SandboxClient):
    """/_sandbox/events with an old version answers immediately."""
    started = time.monotonic()
    assert await sb.wait_for_change(0, timeout=10) > 0
    assert time.monotonic() - started < 2


async def test_events_time_out_with_the_same_version(sb: SandboxClient):
    """/_sandbox/events with nothing happening answers the unchanged version after its timeout."""
    version = (await sb.state())["version"]
    assert await sb.wait_for_change(version, timeout=0.2) == version


async def test_control_errors_are_json_with_status(sb: SandboxClient):
    """Control refusals are {"error": ...} with 400, or 404 for missing things."""
    with pytest.raises(SandboxError) as missing:
        await sb.send_text(123, "x", bot_id=BOT_ID)
    assert missing.value.status == 404
    with pytest.raises(SandboxError) as bad:
        await sb.create_user("")
    assert bad.value.status == 400
    with pytest.raises(SandboxError) as unknown:
        await sb.callback_answer("nope")
    assert unknown.value.status == 404


async def test_bad_bot_token_shape_is_refused(sb: SandboxClient):
    """A token that does not look like <digits>:<secret> cannot be registered."""
    with pytest.raises(SandboxError, match="a bot token looks like"):
        await sb.create_bot("not-a-token")


async def test_users_get_chosen_or_fresh_ids(sb: SandboxClient):
    """A user can be created with a chosen id; a taken id is refused."""
    user = await sb.create_user("Dana", user_id=5550001, language_code="my")
    assert user == {"id": 5550001, "is_bot": False, "first_name": "Dana", "language_code": "my"}
    with pytest.raises(SandboxError):
        await sb.create_user("Again", user_id=5550001)


async def test_server_listens_on_loopback_only():
    """SandboxServer refuses a non-loopback host."""
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="0.0.0.0")


async def test_stopping_the_server_answers_a_pending_long_poll(session):
    """Stopping the sandbox answers a waiting getUpdates at once instead of stalling the shutdown."""
    server = SandboxServer(tokens=["7:stop"])
    await server.start()
    poll = asyncio.create_task(BotApi(session, server.url, "7:stop").json("getUpdates", timeout=30))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 0.5
    assert (await asyncio.wait_for(poll, 2)).result == []
