"""Injected faults through /_sandbox/faults: every kind, counts, filters and clearing."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from sandbox import SandboxClient
from sandbox.client import SandboxError
from tests.sandbox.conftest import BOT_ID, OTHER_BOT_ID, BotApi


@pytest.mark.parametrize(
    ("kind", "options", "status", "description"),
    [
        ("retry_after", {"retry_after": 5}, 429, "Too Many Requests: retry after 5"),
        ("server_error", {}, 500, "Internal Server Error"),
        ("bad_gateway", {}, 502, "Bad Gateway"),
        ("chat_not_found", {}, 400, "Bad Request: chat not found"),
        ("thread_not_found", {}, 400, "Bad Request: message thread not found"),
        ("kicked", {}, 403, "Forbidden: bot was kicked from the supergroup chat"),
        ("blocked", {}, 403, "Forbidden: bot was blocked by the user"),
        (
            "migrated",
            {"migrate_to_chat_id": -1005},
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
        ),
        ("bad_request", {"description": "Bad Request: custom trouble"}, 400, "Bad Request: custom trouble"),
        ("unauthorized", {}, 401, "Unauthorized"),
    ],
)
async def test_fault_kind_answers_with_its_envelope(
    api: BotApi, sb: SandboxClient, alice, kind, options, status, description
):
    """Each answering fault kind gives its HTTP status and Telegram's description once, then calls work."""
    await sb.inject_fault("sendMessage", kind, **options)
    answer = await api.form("sendMessage", chat_id=alice["id"], text="x")
    assert answer.status == status
    assert answer.body["ok"] is False
    assert answer.body["error_code"] == status
    assert answer.description == description
    assert (await api.form("sendMessage", chat_id=alice["id"], text="x")).ok


async def test_retry_after_fault_carries_parameters(api: BotApi, sb: SandboxClient):
    """retry_after puts parameters.retry_after in the envelope."""
    await sb.inject_fault("getMe", "retry_after", retry_after=9)
    assert (await api.json("getMe")).body["parameters"] == {"retry_after": 9}


async def test_migrated_fault_carries_migrate_to_chat_id(api: BotApi, sb: SandboxClient):
    """migrated puts parameters.migrate_to_chat_id in the envelope."""
    await sb.inject_fault("getMe", "migrated", migrate_to_chat_id=-1001234)
    assert (await api.json("getMe")).body["parameters"] == {"migrate_to_chat_id": -1001234}


async def test_hang_fault_makes_the_client_time_out(server, sb: SandboxClient):
    """hang keeps the request unanswered: a client with a 1 s timeout gives up."""
    await sb.inject_fault("getMe", "hang", seconds=2)
    async with httpx.AsyncClient(timeout=1.0) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"{server.url}/bot111111111:AAsandbox-test-token/getMe")


async def test_reset_fault_drops_the_connection(server, sb: SandboxClient):
    """reset closes the connection without an answer: the client sees a connection error."""
    await sb.inject_fault("getMe", "reset")
    async with httpx.AsyncClient(timeout=5.0) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(f"{server.url}/bot111111111:AAsandbox-test-token/getMe")
        answer = await client.post(f"{server.url}/bot111111111:AAsandbox-test-token/getMe")
    assert answer.status_code == 200


async def test_reset_fault_is_a_disconnect_for_aiohttp_too(api: BotApi, sb: SandboxClient):
    """An aiohttp client sees reset as a client (connection) error."""
    await sb.inject_fault("getMe", "reset")
    with pytest.raises(aiohttp.ClientError):
        await api.json("getMe")


async def test_count_affects_exactly_that_many_calls(api: BotApi, sb: SandboxClient):
    """count=3 fails exactly three calls, then the fault is gone."""
    await sb.inject_fault("getMe", "server_error", count=3)
    statuses = [(await api.json("getMe")).status for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]
    assert await sb.faults() == []


async def test_method_filter_spares_other_methods(api: BotApi, sb: SandboxClient, alice):
    """A fault for sendMessage does not touch getMe; the method name matches case-insensitively."""
    await sb.inject_fault("SENDMESSAGE", "server_error")
    assert (await api.json("getMe")).ok
    assert (await api.json("sendMessage", chat_id=alice["id"], text="x")).status == 500


async def test_star_matches_any_method(api: BotApi, sb: SandboxClient):
    """A fault for "*" hits whatever method comes next."""
    await sb.inject_fault("*", "bad_gateway", count=2)
    assert (await api.json("getMe")).status == 502
    assert (await api.json("getWebhookInfo")).status == 502
    assert (await api.json("getMe")).ok


async def test_chat_id_filter_hits_only_that_chat(api: BotApi, sb: SandboxClient, alice):
    """A fault with chat_id only fails calls for that chat, whether chat_id came as text or number."""
    bob = await sb.create_user("Bob")
    await sb.send_text(bob["id"], "/start", bot_id=BOT_ID)
    await sb.inject_fault("sendMessage", "blocked", chat_id=alice["id"])
    assert (await api.json("sendMessage", chat_id=bob["id"], text="x")).ok
    assert (await api.form("sendMessage", chat_id=alice["id"], text="x")).status == 403


async def test_bot_id_filter_hits_only_that_bot(api: BotApi, other_api: BotApi, sb: SandboxClient):
    """A fault with bot_id only fails that bot's calls."""
    await sb.inject_fault("getMe", "server_error", bot_id=OTHER_BOT_ID)
    assert (await api.json("getMe")).ok
    assert (await other_api.json("getMe")).status == 500


async def test_faults_are_listed_and_delete_clears_them(api: BotApi, sb: SandboxClient):
    """GET lists pending faults with their remaining count; DELETE removes them all."""
    fault_id = await sb.inject_fault("getMe", "server_error", count=2)
    await sb.inject_fault("*", "retry_after", retry_after=3)
    listed = await sb.faults()
    assert next((f["id"], f["method"], f["kind"], f["count"]) for f in listed) == (
        fault_id,
        "getMe",
        "server_error",
        2,
    )
    assert listed[1]["retry_after"] == 3
    await sb.clear_faults()
    assert await sb.faults() == []
    assert (await api.json("getMe")).ok


async def test_unknown_fault_kind_is_refused(sb: SandboxClient):
    """An unknown kind is a control-API error naming the known kinds."""
    with pytest.raises(SandboxError, match="unknown fault kind"):
        await sb.inject_fault("getMe", "meteor")


async def test_injected_faults_are_in_the_calls_log_with_their_status(api: BotApi, sb: SandboxClient):
    """A call answered by a fault is logged as not ok, with the status it answered and the fault's name."""
    await sb.inject_fault("getMe", "retry_after", retry_after=2)
    await api.json("getMe")
    call = (await sb.calls("getMe"))[-1]
    assert (call["ok"], call["error_code"], call["description"]) == (False, 429, "injected retry_after")
