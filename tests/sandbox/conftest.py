"""Fixtures for the sandbox's own tests: a real SandboxServer on 127.0.0.1 and raw Bot API callers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from sandbox import SandboxClient, SandboxServer
from sandbox.world import Limits

TOKEN = "111111111:AAsandbox-test-token"
OTHER_TOKEN = "222222222:BBsandbox-other-token"
BOT_ID = 111111111
OTHER_BOT_ID = 222222222


def form_value(value: Any) -> str:
    """Encode one parameter the way python-telegram-bot does: scalars as strings, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@dataclass
class Answer:
    """A Bot API answer: HTTP status and the decoded JSON envelope."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.body.get("ok"))

    @property
    def result(self) -> Any:
        assert self.body.get("ok") is True, self.body
        return self.body["result"]

    @property
    def description(self) -> str:
        return str(self.body.get("description", ""))


class BotApi:
    """Calls `/bot<token>/<method>` over real HTTP as JSON, form-encoded, GET or multipart."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def url(self, method: str) -> str:
        return f"{self.base_url}/bot{self.token}/{method}"

    async def _answer(self, response: aiohttp.ClientResponse) -> Answer:
        body = await response.json(content_type=None)
        return Answer(response.status, body)

    async def json(self, method: str, **params: Any) -> Answer:
        async with self.session.post(self.url(method), json=params) as response:
            return await self._answer(response)

    async def form(self, method: str, **params: Any) -> Answer:
        data = {k: form_value(v) for k, v in params.items() if v is not None}
        async with self.session.post(self.url(method), data=data) as response:
            return await self._answer(response)

    async def get(self, method: str, **params: Any) -> Answer:
        query = {k: form_value(v) for k, v in params.items() if v is not None}
        async with self.session.get(self.url(method), params=query) as response:
            return await self._answer(response)

    async def upload(
        self, method: str, field: str, data: bytes, filename: str, content_type: str, **params: Any
    ) -> Answer:
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(key, form_value(value))
        form.add_field(field, data, filename=filename, content_type=content_type)
        async with self.session.post(self.url(method), data=form) as response:
            return await self._answer(response)

    async def call(self, method: str, **params: Any) -> Any:
        """Call as JSON and return the result, failing the test on an error envelope."""
        return (await self.json(method, **params)).result


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    """A sandbox with two bots and flood limits off (limit tests switch them on)."""
    async with SandboxServer(tokens=[TOKEN, OTHER_TOKEN], limits=Limits(enabled=False)) as running:
        yield running


@pytest.fixture
async def sb(server: SandboxServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as client:
        yield client


@pytest.fixture
def api(server: SandboxServer, session: aiohttp.ClientSession) -> BotApi:
    return BotApi(session, server.url, TOKEN)


@pytest.fixture
def other_api(server: SandboxServer, session: aiohttp.ClientSession) -> BotApi:
    return BotApi(session, server.url, OTHER_TOKEN)


@pytest.fixture
async def alice(sb: SandboxClient) -> dict[str, Any]:
    """A human who has started a private chat with the bot (so the bot may write to her)."""
    user = await sb.create_user("Alice", username="alice", language_code="en")
    await sb.send_text(user["id"], "/start", bot_id=BOT_ID)
    return user


@pytest.fixture
async def forum(sb: SandboxClient, alice: dict[str, Any]) -> dict[str, Any]:
    """A forum supergroup where alice is the creator and the bot an admin that may manage topics."""
    return await sb.create_group(
        "Coordinators",
        forum=True,
        admins=[alice["id"]],
        bots=[{"bot_id": BOT_ID, "admin": True, "can_manage_topics": True}],
    )


async def drain(api: BotApi) -> list[dict[str, Any]]:
    """Fetch and confirm every pending update."""
    updates: list[dict[str, Any]] = (await api.json("getUpdates", timeout=0)).result
    if updates:
        await api.json("getUpdates", offset=updates[-1]["update_id"] + 1, timeout=0)
    return updates
