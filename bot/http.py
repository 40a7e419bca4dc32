"""A python-telegram-bot ``BaseRequest`` on aiohttp: the HTTP client of the polling bot and the alert bot.

python-telegram-bot's default, ``HTTPXRequest``, goes through httpx, httpcore, h11 and anyio; in a busy
bot that stack costs more CPU per update than everything else python-telegram-bot does (see the intake
benchmark in README.md). aiohttp, already a dependency of the sandbox, does the same with its C parser
and one connection pool. ``BEACON_HTTP_CLIENT`` chooses between them (``make_request``).

Semantics follow ``HTTPXRequest``: the same default timeouts (5 s; pool 1 s; 20 s to write an upload),
parameters sent as one JSON object (the Bot API accepts ``application/json``: python-telegram-bot's
form encoding JSON-encodes each parameter and then percent-encodes it, a large share of a request's CPU)
or, with files, as multipart/form-data; every timeout raises
``telegram.error.TimedOut`` and every other transport failure ``telegram.error.NetworkError``. aiohttp has
no write timeout of its own, so the whole request (once it has a connection) is bounded by the sum of its
connect, write and read timeouts (none of them ``None``), an upload's write timeout growing with its size;
a long poll's read timeout already includes its poll time. The pool timeout bounds the wait for one of
``connection_pool_size`` slots.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import IO, Final, Literal
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

__all__ = ["HTTP_CLIENTS", "AiohttpRequest", "HttpClient", "make_request"]

HttpClient = Literal["httpx", "aiohttp"]
HTTP_CLIENTS: Final[tuple[HttpClient, ...]] = ("httpx", "aiohttp")
# python-telegram-bot's defaults (HTTPXRequest and ApplicationBuilder).
DEFAULT_POOL_SIZE: Final = 256
DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_POOL_TIMEOUT: Final = 1.0
DEFAULT_MEDIA_WRITE_TIMEOUT: Final = 20.0
_JSON: Final = "application/json"
# The slowest upload link allowed for before an upload times out: 128 KiB/s (50 MB in under 7 minutes).
UPLOAD_BYTES_PER_SECOND: Final = 128 * 1024
# What a file handle counts as when its size cannot be told: Telegram's 50 MB cap for bots.
_UNKNOWN_SIZE: Final = 50 * 1000 * 1000


def _size(content: bytes | IO[bytes]) -> int:
    if isinstance(content, bytes | bytearray | memoryview):
        return len(content)
    try:
        return os.fstat(content.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return _UNKNOWN_SIZE


def _pick(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """``BaseRequest`` over one ``aiohttp.ClientSession`` with a pool of ``connection_pool_size``
    keep-alive connections. Create it anywhere; the session opens in ``initialize`` (in the running
    event loop) and closes in ``shutdown``. Safe to initialise again after a shutdown."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_proxies",
        "_proxy_of",
        "_read_timeout",
        "_session",
        "_slots",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = DEFAULT_POOL_SIZE,
        read_timeout: float | None = DEFAULT_TIMEOUT,
        write_timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_TIMEOUT,
        pool_timeout: float | None = DEFAULT_POOL_TIMEOUT,
        media_write_timeout: float | None = DEFAULT_MEDIA_WRITE_TIMEOUT,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}
        self._proxy_of: dict[tuple[str, str], str | None] = {}
        # Requests in flight, at most the pool's size: waiting for a slot is what pool_timeout bounds.
        self._slots = asyncio.Semaphore(connection_pool_size)

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout; python-telegram-bot adds a long poll's timeout to it."""
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        return self._pool_size

    async def initialize(self) -> None:
        """Open the session (and its connection pool) in the running event loop."""
        if self._session is None or self._session.closed:
            self._slots = asyncio.Semaphore(self._pool_size)
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            # Proxies come from the environment as with httpx, read once here: aiohttp's trust_env would
            # look them (and .netrc) up in a worker thread on every request.
            self._proxies = {
                scheme: url for scheme, url in getproxies().items() if scheme in ("http", "https", "all")
            }
            self._proxy_of.clear()
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True, raise_for_status=False
            )

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url`` from HTTP(S)_PROXY / ALL_PROXY, unless NO_PROXY exempts its host."""
        if not self._proxies:
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxy_of:
            proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
            host = parts.hostname or ""
            self._proxy_of[key] = None if proxy is None or proxy_bypass(host) else proxy
        return self._proxy_of[key]

    async def shutdown(self) -> None:
        """Close the session and every pooled connection; a second call does nothing."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _timeout(
        self,
        read_timeout: ODVInput[float],
        write_timeout: ODVInput[float],
        connect_timeout: ODVInput[float],
        pool_timeout: ODVInput[float],
        upload_bytes: int | None,
    ) -> tuple[aiohttp.ClientTimeout, float | None]:
        read = _pick(read_timeout, self._read_timeout)
        upload = upload_bytes is not None
        write = _pick(write_timeout, self._media_write_timeout if upload else self._write_timeout)
        connect = _pick(connect_timeout, self._connect_timeout)
        pool = _pick(pool_timeout, self._pool_timeout)
        if write is not None and upload_bytes:
            # httpx bounds each write of an upload; here the whole upload gets one more second per
            # UPLOAD_BYTES_PER_SECOND, so a slow link still sends 50 MB while a stalled one times out.
            write += upload_bytes / UPLOAD_BYTES_PER_SECOND
        parts = (read, write, connect)
        total = None if any(part is None for part in parts) else sum(p for p in parts if p is not None)
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect, sock_read=read)
        return timeout, pool

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; return the HTTP status and the body. Raises TimedOut or NetworkError."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        upload_bytes: int | None = None
        headers = {"User-Agent": self.USER_AGENT}
        body: aiohttp.FormData | bytes | None = None
        if request_data is not None and request_data.contains_files:
            upload_bytes = 0
            form = aiohttp.FormData(quote_fields=False)
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mime_type) in request_data.multipart_data.items():
                form.add_field(name, content, filename=filename, content_type=mime_type)
                upload_bytes += _size(content)
            body = form
        elif request_data is not None:
            parameters = request_data.parameters
            if parameters:
                body = json.dumps(parameters, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                headers["Content-Type"] = _JSON
        timeout, pool = self._timeout(
            read_timeout, write_timeout, connect_timeout, pool_timeout, upload_bytes
        )
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), pool)
            except TimeoutError:
                raise TimedOut(
                    "Pool timeout: All connections in the connection pool are occupied. Request was *not* "
                    "sent to Telegram. Consider adjusting the connection pool size or the pool timeout."
                ) from None
        else:
            await self._slots.acquire()
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            # aiohttp's ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors too.
            raise TimedOut from error
        except (aiohttp.ClientError, OSError) as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
        finally:
            self._slots.release()


def make_request(client: HttpClient, *, get_updates: bool = False) -> BaseRequest:
    """The request object for ``BEACON_HTTP_CLIENT``, with python-telegram-bot's defaults.

    ``get_updates``: the long-polling request, one connection as python-telegram-bot uses.
    """
    pool = 1 if get_updates else DEFAULT_POOL_SIZE
    if client == "aiohttp":
        return AiohttpRequest(connection_pool_size=pool)
    return HTTPXRequest(connection_pool_size=pool)
