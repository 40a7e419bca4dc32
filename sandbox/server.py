"""The sandbox's HTTP server: the Bot API, file downloads, webhook delivery, the control API and the UI.

It listens on loopback only. `SandboxServer` runs it inside a test's event loop; `main()` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox import botapi, humans
from sandbox.botapi import METHODS, Params, Upload
from sandbox.errors import ApiError
from sandbox.world import JSON, BotAccount, ControlError, Limits, World

log = logging.getLogger("sandbox")

WORLD_KEY = web.AppKey("world", World)
CANONICAL = {
    name.lower(): name
    for name in (
        "getMe",
        "logOut",
        "close",
        "getUpdates",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendLocation",
        "copyMessage",
        "forwardMessage",
        "sendChatAction",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "deleteMessage",
        "deleteMessages",
        "answerCallbackQuery",
        "getFile",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "reopenForumTopic",
        "deleteForumTopic",
        "pinChatMessage",
        "unpinChatMessage",
        "getChat",
        "getChatMember",
        "getChatAdministrators",
        "getChatMemberCount",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
    )
}
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_HANG_SECONDS = 120.0
# A public placeholder, not a secret.
DEFAULT_TOKEN = "123456789:SANDBOX-local-token"  # noqa: S105  # nosec B105
# The HTTP status each injected fault answers with, for the calls log (0: the connection is dropped).
FAULT_STATUS = {
    "retry_after": 429,
    "server_error": 500,
    "bad_gateway": 502,
    "hang": 502,
    "reset": 0,
    "chat_not_found": 400,
    "thread_not_found": 400,
    "kicked": 403,
    "blocked": 403,
    "migrated": 400,
    "bad_request": 400,
    "unauthorized": 401,
}


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only addresses the sandbox will listen on."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------- Bot API


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON request body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: the request body must be a JSON object")
        params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = Upload(value.filename or key, value.content_type or "", value.file.read())
        else:
            params[key] = value
    return params


def _envelope(error: ApiError) -> web.Response:
    return web.json_response(error.envelope(), status=error.code)


async def _apply_fault(world: World, request: web.Request, kind: str, options: JSON) -> web.Response | None:
    """Act out an injected fault; return the response to send, or None after dropping the connection."""
    if kind == "retry_after":
        seconds = int(options.get("retry_after", 1))
        return _envelope(ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}))
    if kind == "server_error":
        return _envelope(ApiError(500, "Internal Server Error"))
    if kind == "bad_gateway":
        return _envelope(ApiError(502, "Bad Gateway"))
    if kind == "hang":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(world.stopping.wait(), float(options.get("seconds", DEFAULT_HANG_SECONDS)))
        return _envelope(ApiError(502, "Bad Gateway"))
    if kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        return None
    if kind == "chat_not_found":
        return _envelope(ApiError(400, "Bad Request: chat not found"))
    if kind == "thread_not_found":
        return _envelope(ApiError(400, "Bad Request: message thread not found"))
    if kind == "kicked":
        return _envelope(ApiError(403, "Forbidden: bot was kicked from the supergroup chat"))
    if kind == "blocked":
        return _envelope(ApiError(403, "Forbidden: bot was blocked by the user"))
    if kind == "migrated":
        target = int(options.get("migrate_to_chat_id", -1001234567890))
        return _envelope(
            ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": target},
            )
        )
    if kind == "unauthorized":
        return _envelope(ApiError(401, "Unauthorized"))
    return _envelope(ApiError(400, str(options.get("description", "Bad Request: injected fault"))))


async def bot_api(request: web.Request) -> web.StreamResponse:
    """Serve `/bot<token>/<method>` like api.telegram.org."""
    world = request.app[WORLD_KEY]
    try:
        bot = world.bot_by_token(request.match_info["token"])
    except ApiError as error:
        return _envelope(error)
    requested = request.match_info["method"]
    handler = METHODS.get(requested.lower())
    if handler is None:
        return _envelope(ApiError(404, "Not Found"))
    name = CANONICAL.get(requested.lower(), requested)
    try:
        raw = await _read_params(request)
    except ApiError as error:
        world.record_call(bot.id, name, {}, error)
        return _envelope(error)
    fault = world.take_fault(name, bot.id, None if raw.get("chat_id") is None else str(raw.get("chat_id")))
    if fault is not None:
        code = FAULT_STATUS.get(fault.kind, 400)
        world.record_call(bot.id, name, raw, ApiError(code, f"injected {fault.kind}"))
        response = await _apply_fault(world, request, fault.kind, fault.options)
        return response if response is not None else web.Response(status=500)
    try:
        result = await handler(world, bot, Params(raw))
    except ApiError as error:
        world.record_call(bot.id, name, raw, error)
        return _envelope(error)
    except Exception:
        log.exception("sandbox method %s failed", name)
        failure = ApiError(500, "Internal Server Error")
        world.record_call(bot.id, name, raw, failure)
        return _envelope(failure)
    world.record_call(bot.id, name, raw, None)
    return web.json_response({"ok": True, "result": result})


async def file_download(request: web.Request) -> web.StreamResponse:
    """Serve `/file/bot<token>/<file_path>`."""
    world = request.app[WORLD_KEY]
    try:
        world.bot_by_token(request.match_info["token"])
    except ApiError as error:
        return _envelope(error)
    path = request.match_info["path"]
    for stored in world.files.values():
        if stored.file_path == path:
            return web.Response(body=stored.data, content_type=stored.mime_type)
    return _envelope(ApiError(404, "Not Found"))


# ---------------------------------------------------------------------------------------------- control API

ControlHandler = Callable[[World, web.Request, JSON], Awaitable[Any]]


def control(func: ControlHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a control handler: parse the JSON body, turn errors into `{"error": ...}` answers."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        world = request.app[WORLD_KEY]
        body: JSON = {}
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            try:
                loaded = await request.json()
            except ValueError:
                return web.json_response({"error": "the body must be JSON"}, status=400)
            if not isinstance(loaded, dict):
                return web.json_response({"error": "the body must be a JSON object"}, status=400)
            body = loaded
        try:
            result = await func(world, request, body)
        except ControlError as error:
            return web.json_response({"error": str(error)}, status=error.status)
        except ApiError as error:
            return web.json_response({"error": error.description}, status=400)
        except (KeyError, TypeError, ValueError) as error:
            return web.json_response({"error": f"bad request: {error!r}"}, status=400)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    return wrapper


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{name} must be an integer") from None


@control
async def c_state(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.world_state(world)


@control
async def c_events(world: World, request: web.Request, body: JSON) -> JSON:
    after = _int_query(request, "after") or 0
    timeout = min(60.0, float(request.query.get("timeout", "25")))
    return {"version": await world.wait_version(after, timeout)}


@control
async def c_reset(world: World, request: web.Request, body: JSON) -> JSON:
    world.reset(keep_bots=bool(body.get("keep_bots", True)))
    return {"ok": True}


@control
async def c_add_bot(world: World, request: web.Request, body: JSON) -> JSON:
    return world.add_bot(str(body["token"]), body.get("username"), body.get("first_name")).user_json()


@control
async def c_add_user(world: World, request: web.Request, body: JSON) -> JSON:
    human = world.add_human(
        str(body.get("first_name", "")),
        body.get("last_name"),
        body.get("username"),
        body.get("language_code"),
        int(body["id"]) if body.get("id") is not None else None,
    )
    return human.user_json()


@control
async def c_block(world: World, request: web.Request, body: JSON) -> JSON:
    human = world.human(int(request.match_info["user_id"]))
    bot_id = int(body["bot_id"])
    if body.get("blocked", True):
        human.blocked_bots.add(bot_id)
    else:
        human.blocked_bots.discard(bot_id)
    world.touch()
    return {"ok": True}


@control
async def c_add_group(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.create_group(world, body).chat_json()


@control
async def c_member(world: World, request: web.Request, body: JSON) -> JSON:
    group = world.group(int(request.match_info["chat_id"]))
    user_id = int(body["user_id"])
    if user_id not in world.bots:
        world.human(user_id)
    humans.set_member(world, group, user_id, str(body.get("status", "member")))
    return botapi.member_json(world, group, user_id)


@control
async def c_migrate(world: World, request: web.Request, body: JSON) -> JSON:
    return {"new_chat_id": humans.migrate_group(world, world.group(int(request.match_info["chat_id"])))}


@control
async def c_topic(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.human_topic(world, world.group(int(request.match_info["chat_id"])), body)


@control
async def c_delete_topic(world: World, request: web.Request, body: JSON) -> JSON:
    group = world.group(int(request.match_info["chat_id"]))
    thread_id = int(request.match_info["thread_id"])
    if thread_id not in group.topics:
        raise ControlError("no such topic", 404)
    botapi.delete_topic(world, group, thread_id)
    return {"ok": True}


@control
async def c_send(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.send_message(world, body)


@control
async def c_edit(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.edit_message(world, body)


@control
async def c_press(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.press_button(world, body)


@control
async def c_callback(world: World, request: web.Request, body: JSON) -> JSON:
    query = world.callbacks.get(request.match_info["query_id"])
    if query is None:
        raise ControlError("no such callback query", 404)
    # The README promises every key, answered or not.
    return {"answered": query.answered, "text": None, "show_alert": False, "url": None, **query.answer}


@control
async def c_transcript(world: World, request: web.Request, body: JSON) -> JSON:
    return humans.transcript(
        world,
        int(request.match_info["chat_id"]),
        _int_query(request, "bot_id"),
        _int_query(request, "thread_id"),
    )


@control
async def c_file(world: World, request: web.Request, body: JSON) -> web.StreamResponse:
    stored = world.files.get(request.match_info["file_id"])
    if stored is None:
        raise ControlError("no such file", 404)
    return web.Response(body=stored.data, content_type=stored.mime_type)


@control
async def c_add_fault(world: World, request: web.Request, body: JSON) -> JSON:
    options = {k: v for k, v in body.items() if k not in ("method", "kind", "count", "duration")}
    duration = body.get("duration")
    fault = world.add_fault(
        str(body.get("method", "*")),
        str(body.get("kind", "")),
        int(body.get("count", 1)),
        options,
        None if duration is None else float(duration),
    )
    return {"id": fault.id}


@control
async def c_list_faults(world: World, request: web.Request, body: JSON) -> JSON:
    return {"faults": [fault.as_json() for fault in world.live_faults()]}


@control
async def c_clear_faults(world: World, request: web.Request, body: JSON) -> JSON:
    world.faults.clear()
    return {"ok": True}


@control
async def c_clock(world: World, request: web.Request, body: JSON) -> JSON:
    if request.method == "POST":
        advance = float(body.get("advance", 0))
        if advance < 0:
            raise ControlError("the clock only moves forward")
        world.clock.offset += advance
        world.touch()
    return {"now": world.clock.now()}


@control
async def c_limits(world: World, request: web.Request, body: JSON) -> JSON:
    for key in ("per_chat_per_second", "per_chat_burst", "per_group_per_minute"):
        if key in body:
            setattr(world.limits, key, float(body[key]))
    if "enabled" in body:
        world.limits.enabled = bool(body["enabled"])
    world.buckets.clear()
    return world.limits.as_json()


@control
async def c_calls(world: World, request: web.Request, body: JSON) -> JSON:
    method = request.query.get("method")
    bot_id = _int_query(request, "bot_id")
    after = _int_query(request, "after") or 0
    calls = [
        call
        for call in world.calls
        if call["seq"] > after
        and (method is None or call["method"].lower() == method.lower())
        and (bot_id is None or call["bot_id"] == bot_id)
    ]
    return {"calls": calls}


# ---------------------------------------------------------------------------------------------- UI and app


def _static_dir() -> Path:
    return Path(str(resources.files("sandbox") / "static"))


async def index(request: web.Request) -> web.StreamResponse:
    page = _static_dir() / "index.html"
    if not page.exists():
        return web.Response(
            text="<!doctype html><title>Sandbox</title><p>The sandbox UI is not installed.</p>",
            content_type="text/html",
        )
    return web.FileResponse(page, headers={"Cache-Control": "no-store"})


def build_app(world: World) -> web.Application:
    """The aiohttp application serving every route of the sandbox."""
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app[WORLD_KEY] = world
    r = app.router
    r.add_route("*", "/bot{token}/{method}", bot_api)
    r.add_get("/file/bot{token}/{path:.+}", file_download)
    r.add_get("/", index)
    static = _static_dir()
    if static.exists():
        r.add_static("/static/", static)
    r.add_get("/_sandbox/state", c_state)
    r.add_get("/_sandbox/events", c_events)
    r.add_post("/_sandbox/reset", c_reset)
    r.add_post("/_sandbox/bots", c_add_bot)
    r.add_post("/_sandbox/users", c_add_user)
    r.add_post("/_sandbox/users/{user_id}/block", c_block)
    r.add_post("/_sandbox/groups", c_add_group)
    r.add_post("/_sandbox/groups/{chat_id}/members", c_member)
    r.add_post("/_sandbox/groups/{chat_id}/migrate", c_migrate)
    r.add_post("/_sandbox/groups/{chat_id}/topics", c_topic)
    r.add_delete("/_sandbox/groups/{chat_id}/topics/{thread_id}", c_delete_topic)
    r.add_post("/_sandbox/messages", c_send)
    r.add_post("/_sandbox/messages/edit", c_edit)
    r.add_post("/_sandbox/callbacks", c_press)
    r.add_get("/_sandbox/callbacks/{query_id}", c_callback)
    r.add_get("/_sandbox/chats/{chat_id}/transcript", c_transcript)
    r.add_get("/_sandbox/files/{file_id}", c_file)
    r.add_post("/_sandbox/faults", c_add_fault)
    r.add_get("/_sandbox/faults", c_list_faults)
    r.add_delete("/_sandbox/faults", c_clear_faults)
    r.add_get("/_sandbox/clock", c_clock)
    r.add_post("/_sandbox/clock", c_clock)
    r.add_post("/_sandbox/limits", c_limits)
    r.add_get("/_sandbox/calls", c_calls)
    return app


# ---------------------------------------------------------------------------------------------- webhooks


class WebhookDelivery:
    """Pushes each bot's queued updates to its webhook, in order, retrying with backoff like Telegram."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.session: aiohttp.ClientSession | None = None
        self.runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.runner = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        for task in [self.runner, *self.tasks.values()]:
            if task is not None:
                task.cancel()
        for task in [self.runner, *self.tasks.values()]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.session is not None:
            await self.session.close()

    async def _watch(self) -> None:
        while True:
            for bot in self.world.bots.values():
                busy = bot.id in self.tasks and not self.tasks[bot.id].done()
                if bot.webhook is not None and bot.updates and not busy:
                    self.tasks[bot.id] = asyncio.create_task(self._drain(bot))
            await asyncio.sleep(0.02)

    async def _drain(self, bot: BotAccount) -> None:
        if self.session is None:
            raise RuntimeError("the webhook pusher is not started")
        failures = 0
        while bot.webhook is not None and bot.updates:
            webhook = bot.webhook
            update = bot.updates[0]
            body = {k: v for k, v in update.items() if k != "_created"}
            headers = {"Content-Type": "application/json"}
            if webhook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
            try:
                async with self.session.post(webhook.url, data=json.dumps(body), headers=headers) as response:
                    ok = 200 <= response.status < 300
                    problem = f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                ok, problem = False, f"Connection failed: {type(error).__name__}"
            if ok:
                failures = 0
                if bot.updates and bot.updates[0] is update:
                    bot.updates.popleft()
                    self.world.touch()
                continue
            failures += 1
            webhook.last_error_date = int(self.world.clock.now())
            webhook.last_error_message = problem
            await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))


# ---------------------------------------------------------------------------------------------- runner


class SandboxServer:
    """Run the sandbox in the current event loop: `async with SandboxServer() as server: server.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: Sequence[str] = (),
        limits: Limits | None = None,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the sandbox listens on loopback addresses only, not {host!r}")
        self.host = host
        self.port = port
        self.tokens = list(tokens)
        self.limits = limits
        self.world: World | None = None
        self._runner: web.AppRunner | None = None
        self._webhooks: WebhookDelivery | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self.world = World(self.limits)
        for token in self.tokens:
            self.world.add_bot(token)
        self._runner = web.AppRunner(build_app(self.world), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1])
        self._webhooks = WebhookDelivery(self.world)
        self._webhooks.start()

    async def stop(self) -> None:
        if self.world is not None:
            self.world.stopping.set()
            for bot in self.world.bots.values():
                bot.new_update.set()  # pending long polls answer now instead of holding up the shutdown
            self.world.touch()  # and so do pending /_sandbox/events waits
        if self._webhooks is not None:
            await self._webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon sandbox",
        description="Run the local Telegram Bot API emulator and its browser UI on loopback. "
        "Point any bot at it with base URL http://HOST:PORT/bot.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081; 0 picks a free one)")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help=f"register a bot token (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument("--no-limits", action="store_true", help="do not enforce Telegram's flood limits")
    return parser


async def serve(host: str, port: int, tokens: Sequence[str], limits: Limits, stop: asyncio.Event) -> None:
    """Run until `stop` is set, printing where the sandbox listens."""
    async with SandboxServer(host, port, tokens=tokens, limits=limits) as server:
        print(f"Sandbox Bot API listening on {server.url} (UI: {server.url}/)", flush=True)
        for token in tokens:
            print(f"  bot token: {token}   (base URL for a bot: {server.url}/bot)", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `beacon sandbox` and `python -m sandbox`."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if not is_loopback_host(args.host):
        print(f"beacon sandbox: refusing to listen on {args.host}: loopback addresses only", flush=True)
        return 2
    limits = Limits(enabled=not args.no_limits)
    tokens = args.token or [DEFAULT_TOKEN]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, tokens, limits, stop)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run())
    except OSError as error:
        print(f"beacon sandbox: cannot listen on {args.host}:{args.port}: {error.strerror}", flush=True)
        return 1
    return 0
