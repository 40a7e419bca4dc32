"""Webhook delivery to a receiver on loopback: order, secret header, retries and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sandbox import SandboxClient
from tests.sandbox.conftest import BOT_ID, BotApi


class Receiver:
    """A tiny webhook endpoint that records every request and answers with the statuses it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses: list[int] = []  # answered in turn; 200 once empty
        self.arrived = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async def enough() -> None:
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)

    def updates(self) -> list[dict[str, Any]]:
        return [body for _, body in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


async def test_updates_are_posted_in_order_with_the_secret_header(
    api: BotApi, sb: SandboxClient, alice, receiver: Receiver
):
    """With secret_token, each update is POSTed in order carrying X-Telegram-Bot-Api-Secret-Token."""
    assert await api.call("setWebhook", url=receiver.url, secret_token="s3cr3t_TOKEN-1") is True
    for text in ("one", "two", "three"):
        await sb.send_text(alice["id"], text, bot_id=BOT_ID)
    await receiver.wait_for(4)
    texts = [u["message"]["text"] for u in receiver.updates()]
    assert texts == ["/start", "one", "two", "three"]
    ids = [u["update_id"] for u in receiver.updates()]
    assert ids == sorted(ids)
    for headers, _ in receiver.requests:
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t_TOKEN-1"
        assert headers["Content-Type"].startswith("application/json")


async def test_without_a_secret_there_is_no_secret_header(api: BotApi, alice, receiver: Receiver):
    """A webhook set without secret_token gets requests without the secret header."""
    await api.form("setWebhook", url=receiver.url)
    await receiver.wait_for(1)
    headers, body = receiver.requests[0]
    assert "X-Telegram-Bot-Api-Secret-Token" not in headers
    assert body["message"]["text"] == "/start"


async def test_a_failing_receiver_gets_the_update_retried(
    api: BotApi, sb: SandboxClient, alice, receiver: Receiver
):
    """A 500 keeps the update pending, getWebhookInfo reports the error, and the retry delivers it."""
    receiver.statuses = [500]
    await api.call("setWebhook", url=receiver.url)
    await receiver.wait_for(1)
    info = await api.call("getWebhookInfo")
    assert info["pending_update_count"] == 1
    assert "500" in info["last_error_message"]
    assert isinstance(info["last_error_date"], int)
    await receiver.wait_for(2)
    first, retry = receiver.updates()
    assert first == retry
    await sb.wait_until(lambda: _pending_is_zero(api))


async def _pending_is_zero(api: BotApi) -> bool:
    return (await api.call("getWebhookInfo"))["pending_update_count"] == 0


async def test_a_non_loopback_url_is_refused(api: BotApi):
    """setWebhook to an address outside loopback is refused; the sandbox never calls out."""
    answer = await api.json("setWebhook", url="https://example.org/hook")
    assert answer.status == 400
    assert answer.description.startswith("Bad Request: bad webhook")
    assert (await api.call("getWebhookInfo"))["url"] == ""


async def test_a_secret_with_bad_characters_is_refused(api: BotApi, receiver: Receiver):
    """secret_token may only hold A-Z, a-z, 0-9, _ and -."""
    answer = await api.json("setWebhook", url=receiver.url, secret_token="no spaces!")
    assert answer.status == 400


async def test_delete_webhook_stops_delivery(api: BotApi, sb: SandboxClient, alice, receiver: Receiver):
    """After deleteWebhook nothing more is POSTed and updates wait for getUpdates."""
    await api.call("setWebhook", url=receiver.url)
    await receiver.wait_for(1)
    await api.call("deleteWebhook")
    await sb.send_text(alice["id"], "after", bot_id=BOT_ID)
    await asyncio.sleep(0.15)  # several rounds of the delivery loop (it looks every 20 ms)
    assert len(receiver.requests) == 1
    assert [u["message"]["text"] for u in await api.call("getUpdates")] == ["after"]


async def test_webhook_allowed_updates_are_reported(api: BotApi, receiver: Receiver):
    """allowed_updates given to setWebhook show in getWebhookInfo."""
    await api.form("setWebhook", url=receiver.url, allowed_updates=["message", "chat_member"])
    info = await api.call("getWebhookInfo")
    assert info["allowed_updates"] == ["chat_member", "message"]


async def test_drop_pending_updates_discards_the_queue(api: BotApi, alice):
    """setWebhook with drop_pending_updates forgets updates queued before it."""
    await api.form("setWebhook", url="http://127.0.0.1:9/none", drop_pending_updates=True)
    assert (await api.call("getWebhookInfo"))["pending_update_count"] == 0
