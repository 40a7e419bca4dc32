"""bot/http.py's AiohttpRequest against the sandbox over real HTTP on loopback: every Bot API outcome
python-telegram-bot distinguishes (success, 4xx/5xx, 429, timeouts, dropped and refused connections),
multipart uploads, long polling, clean shutdown, and the whole Beacon bot running on it (its default) and on
python-telegram-bot's own httpx client (still a choice)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.app import ALERT_BOT_KEY
from bot.config import ConfigError, load_settings
from bot.http import AiohttpRequest, make_request
from bot.keys import generate_secret_key
from sandbox.client import SandboxClient
from sandbox.samples import sample_png
from sandbox.server import SandboxServer
from tests.e2e.conftest import Harness, make_token, running_bot
from tests.e2e.intake_flow import QUICK, Walk, case_ids, new_reporter, outbox_rows

JSON = dict[str, object]


class Api:
    """A sandbox with one bot and one person who has written to it, and a Bot on AiohttpRequest."""

    def __init__(self, server: SandboxServer, sb: SandboxClient, token: str, user_id: int) -> None:
        self.server = server
        self.sb = sb
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.user_id = user_id

    def bot(self, request: AiohttpRequest | None = None, url: str | None = None) -> Bot:
        base = url or self.server.url
        return Bot(
            self.token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=request or AiohttpRequest(),
            get_updates_request=AiohttpRequest(connection_pool_size=1),
        )


@pytest.fixture
async def api(sandbox: SandboxServer) -> AsyncIterator[Api]:
    token = make_token()
    async with SandboxClient(sandbox.url) as sb:
        await sb.create_bot(token, username="http_test_bot")
        await sb.set_limits(enabled=False)
        user = await sb.create_user("Person", language_code="en")
        bot_id = int(token.split(":")[0])
        await sb.send_text(user["id"], "/start", bot_id=bot_id)
        yield Api(sandbox, sb, token, int(user["id"]))


async def test_requests_round_trip_and_the_session_closes_cleanly(api: Api) -> None:
    """getMe and sendMessage (a JSON body, with a keyboard) arrive as sent; shutdown closes the pool."""
    request = AiohttpRequest()
    async with api.bot(request) as bot:
        me = await bot.get_me()
        assert me.id == api.bot_id
        sent = await bot.send_message(
            api.user_id,
            "Zdravo — xin chào — 你好 & <b>?</b> = 100%",
            reply_markup={"inline_keyboard": [[{"text": "Yes", "callback_data": "s:x:yes"}]]},
        )
    messages = await api.sb.messages(api.user_id, bot_id=api.bot_id)
    shown = next(m for m in messages if m["message_id"] == sent.message_id)
    assert shown["text"] == "Zdravo — xin chào — 你好 & <b>?</b> = 100%"
    assert shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "s:x:yes"
    # Shut down: a request now is refused until it is initialised again, which works.
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{api.server.url}/bot{api.token}/getMe", "POST")
    await request.shutdown()  # a second shutdown does nothing
    await request.initialize()
    try:
        code, body = await request.do_request(f"{api.server.url}/bot{api.token}/getMe", "POST")
    finally:
        await request.shutdown()
    assert code == 200
    assert b'"ok":true' in body.replace(b" ", b"")


async def test_error_statuses_become_python_telegram_bot_errors(api: Api) -> None:
    """5xx and dropped connections are NetworkError, 429 RetryAfter, 400 BadRequest, 403 Forbidden."""
    async with api.bot() as bot:
        for kind in ("server_error", "bad_gateway", "reset"):
            await api.sb.inject_fault("sendMessage", kind)
            with pytest.raises(NetworkError) as raised:
                await bot.send_message(api.user_id, "hello")
            assert not isinstance(raised.value, TimedOut), kind
        await api.sb.inject_fault("sendMessage", "retry_after", retry_after=7)
        with pytest.raises(RetryAfter) as retry:
            await bot.send_message(api.user_id, "hello")
        assert retry.value.retry_after in (7, timedelta(seconds=7))
        await api.sb.inject_fault("sendMessage", "blocked")
        with pytest.raises(Forbidden):
            await bot.send_message(api.user_id, "hello")
        with pytest.raises(BadRequest):
            await bot.send_message(api.user_id, "")  # Telegram refuses an empty text
        # After every failure the pool still works.
        sent = await bot.send_message(api.user_id, "still here")
    assert sent.text == "still here"


async def test_a_hanging_server_times_out(api: Api) -> None:
    """A request the server does not answer within the read timeout raises TimedOut, not a hang."""
    request = AiohttpRequest(read_timeout=0.3)
    async with api.bot(request) as bot:
        await api.sb.inject_fault("sendMessage", "hang", seconds=30)
        with pytest.raises(TimedOut):
            await bot.send_message(api.user_id, "hello")
        # A per-call read timeout wins over the default: this one waits for the 502 the hang ends with.
        await api.sb.inject_fault("sendMessage", "hang", seconds=0.5)
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(api.user_id, "hello", read_timeout=10)
        assert not isinstance(raised.value, TimedOut)


async def test_a_full_pool_times_out_waiting_for_a_connection(api: Api) -> None:
    """With one connection busy, a second request waits at most the pool timeout, then TimedOut."""
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.2, read_timeout=30)
    async with api.bot(request) as bot:
        await api.sb.inject_fault("sendMessage", "hang", seconds=30)
        busy = asyncio.create_task(bot.send_message(api.user_id, "first"))
        try:
            await api.sb.wait_until(lambda: _hung(api), timeout=10)
            with pytest.raises(TimedOut):
                await bot.get_me()
        finally:
            busy.cancel()
            with pytest.raises(asyncio.CancelledError):
                await busy


async def _hung(api: Api) -> bool:
    calls = await api.sb.calls("sendMessage", bot_id=api.bot_id)
    return any(c["error_code"] == 502 for c in calls)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_is_a_network_error(api: Api) -> None:
    request = AiohttpRequest(connect_timeout=2)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:{_closed_port()}/bot{api.token}/getMe")
    finally:
        await request.shutdown()
    assert not isinstance(raised.value, TimedOut)
    assert "aiohttp." in str(raised.value)


async def test_proxies_come_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is used (here: a closed port, so the request fails) unless NO_PROXY exempts the host."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    url = f"{api.server.url}/bot{api.token}/getMe"
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="Proxy"):
            await request.post(url)
    finally:
        await request.shutdown()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    await request.initialize()  # the environment is read again when the session opens
    try:
        assert (await request.post(url))["id"] == api.bot_id  # type: ignore[call-overload,index]
    finally:
        await request.shutdown()


async def test_multipart_uploads_arrive_byte_for_byte(api: Api) -> None:
    """A document of 45 MiB (an export near Telegram's 50 MB cap), a photo and a voice note upload as
    multipart/form-data with their file names and captions intact."""
    content = random.Random(7).randbytes(45 * 2**20)
    async with api.bot() as bot:
        document = await bot.send_document(
            api.user_id, content, filename="beacon-export.csv.age", caption="Export — full level"
        )
        voice = await bot.send_voice(api.user_id, b"OggS" + bytes(200), duration=2, filename="note.ogg")
        photo = await bot.send_photo(api.user_id, sample_png(), caption="A wall")
    assert document.document is not None
    assert document.document.file_name == "beacon-export.csv.age"
    assert document.caption == "Export — full level"
    assert await api.sb.file_bytes(document.document.file_id) == content
    assert voice.voice is not None
    assert (await api.sb.file_bytes(voice.voice.file_id)).startswith(b"OggS")
    assert photo.photo
    assert photo.caption == "A wall"
    assert await api.sb.file_bytes(photo.photo[-1].file_id) == sample_png()


async def test_downloads_go_through_the_same_client(api: Api) -> None:
    """A file a person sent is fetched with getFile and downloaded over the same session."""
    sent = await api.sb.send_document(
        api.user_id, "list.txt", "text/plain", b"names and places\n" * 1000, bot_id=api.bot_id
    )
    file_id = sent["message"]["document"]["file_id"]
    async with api.bot() as bot:
        telegram_file = await bot.get_file(file_id)
        data = await telegram_file.download_as_bytearray()
    assert bytes(data) == b"names and places\n" * 1000


async def test_long_polling_waits_longer_than_the_read_timeout(api: Api) -> None:
    """getUpdates with a poll time above the read timeout neither times out nor misses an update."""
    bot = Bot(
        api.token,
        base_url=f"{api.server.url}/bot",
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(connection_pool_size=1, read_timeout=0.2),
    )
    async with bot:
        pending = await bot.get_updates(timeout=0)
        offset = pending[-1].update_id + 1 if pending else None
        poll = asyncio.create_task(bot.get_updates(offset=offset, timeout=2))
        await asyncio.sleep(0.5)  # the poll is waiting on the server now, past its 0.2 s read timeout
        await api.sb.send_text(api.user_id, "are you there?", bot_id=api.bot_id)
        updates = await poll
        empty = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
    assert [u.message.text for u in updates if u.message] == ["are you there?"]
    assert empty == ()


def test_the_setting_chooses_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp unless BEACON_HTTP_CLIENT says httpx (python-telegram-bot's own client)."""
    monkeypatch.delenv("BEACON_HTTP_CLIENT", raising=False)
    base = {"_env_file": None, "bot_token": "123:abc", "secret_key": generate_secret_key()}
    assert load_settings(**base).http_client == "aiohttp"
    assert load_settings(**base, http_client=" HTTPX ").http_client == "httpx"
    assert load_settings(**base, http_client="aiohttp").http_client == "aiohttp"
    monkeypatch.setenv("BEACON_HTTP_CLIENT", "httpx")
    assert load_settings(**base).http_client == "httpx"
    with pytest.raises(ConfigError, match="BEACON_HTTP_CLIENT: must be httpx or aiohttp"):
        load_settings(**base, http_client="requests")
    assert isinstance(make_request("aiohttp"), AiohttpRequest)
    assert make_request("aiohttp", get_updates=True).connection_pool_size == 1  # type: ignore[attr-defined]
    assert isinstance(make_request("httpx"), HTTPXRequest)


@pytest.fixture(params=["aiohttp", "httpx"])
async def client_harness(
    sandbox: SandboxServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """The e2e harness with BEACON_HTTP_CLIENT set to each client: the default (aiohttp, bot/http.py) and
    python-telegram-bot's own httpx, for the polling bot and the alert bot alike."""
    async with running_bot(sandbox, tmp_path / "beacon.db", http_client=request.param) as h:
        yield h


async def test_beacon_runs_on_either_client_from_report_to_alert(client_harness: Harness) -> None:
    """A whole report through the polling bot, and its alert through the alert bot, both on the client
    chosen."""
    h = client_harness
    expected = AiohttpRequest if h.settings.http_client == "aiohttp" else HTTPXRequest
    alert_bot = h.app.bot_data[ALERT_BOT_KEY]
    assert isinstance(alert_bot, Bot)
    assert isinstance(h.app.bot.request, expected)
    assert isinstance(alert_bot.request, expected)
    r = await new_reporter(h)
    await Walk(r, QUICK).report()
    [case_id] = await case_ids(h)
    assert await outbox_rows(h) == [(case_id, "new_case")]

    async def alerted() -> bool:
        calls = await h.sb.calls("sendMessage", bot_id=h.bot_id)
        return any(c["ok"] and str(c["chat_id"]) == str(h.group_id) for c in calls)

    await h.sb.wait_until(alerted, timeout=20)
