"""The composition root: endpoint URLs, rate limiter, handler order and quiet loggers (no network needed)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from telegram import Update
from telegram.ext import AIORateLimiter

from bot.app import (
    BeaconApplication,
    RedactingFilter,
    build_application,
    configure_logging,
    get_database,
    webhook_path,
)
from bot.config import load_settings
from handlers.common import DEFAULT_LOCALE_KEY
from handlers.errors import on_error
from handlers.fallback import group_command
from handlers.intake import conversation as intake
from tests.unit.conftest import VALID_TOKEN


class NamedBot:
    username = "beacon_bot"
    defaults = None


@pytest.fixture
def application(valid_env):
    valid_env.setenv("BEACON_API_URL", "http://127.0.0.1:8081/")
    valid_env.setenv("BEACON_DEFAULT_LOCALE", "vi")
    return build_application(load_settings())


def test_bot_api_urls_put_the_token_after_bot(application):
    """Requests go to <api_url>/bot<token>/<method> and files to <api_url>/file/bot<token>/<path>."""
    assert application.bot.base_url == f"http://127.0.0.1:8081/bot{VALID_TOKEN}"
    assert application.bot.base_file_url == f"http://127.0.0.1:8081/file/bot{VALID_TOKEN}"


def test_requests_pass_through_a_rate_limiter_that_retries(application):
    """429 answers are retried by AIORateLimiter rather than surfacing as errors."""
    assert isinstance(application.bot.rate_limiter, AIORateLimiter)


def test_default_locale_is_handed_to_the_handlers(application):
    """Handlers find the configured default locale in bot_data."""
    assert application.bot_data[DEFAULT_LOCALE_KEY] == "vi"


def test_database_is_not_available_before_post_init(application):
    """The database is opened by post_init; asking earlier is a clear error."""
    with pytest.raises(RuntimeError, match="not open"):
        get_database(application)


def route(application: BeaconApplication, message: dict[str, Any], kind: str = "message") -> object:
    """Return the callback the first matching group-0 handler would run, or None."""
    data = {"update_id": 1, kind: {"message_id": 1, "date": 1_700_000_000, **message}}
    update = Update.de_json(data, None)
    if update.effective_message is not None:
        update.effective_message.set_bot(NamedBot())  # type: ignore[arg-type]
    for handler in application.handlers[0]:
        if handler.check_update(update):
            return handler.callback
    return None


PRIVATE = {"chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": False, "first_name": "A"}}
GROUP = {
    "chat": {"id": -1005, "type": "supergroup", "title": "G"},
    "from": {"id": 5, "is_bot": False, "first_name": "A"},
}


def command(text: str) -> dict[str, Any]:
    return {"text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}


@pytest.mark.parametrize(
    ("message", "kind", "expected"),
    [
        ({**PRIVATE, **command("/start")}, "message", intake.start),
        ({**PRIVATE, **command("/start@beacon_bot")}, "message", intake.start),
        ({**PRIVATE, **command("/x")}, "message", intake.exit_and_wipe),
        ({**PRIVATE, **command("/status 1234")}, "message", intake.status),
        ({**PRIVATE, **command("/help")}, "message", intake.help_command),
        ({**PRIVATE, **command("/nonsense")}, "message", intake.unknown_command),
        ({**PRIVATE, "text": "hello"}, "message", intake.on_message),
        (
            {
                **PRIVATE,
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                    "type": "regular",
                },
            },
            "message",
            intake.on_message,
        ),
        ({**PRIVATE, "location": {"latitude": 1.0, "longitude": 2.0}}, "message", intake.on_message),
        ({**PRIVATE, **command("/start")}, "edited_message", intake.on_edited),
        ({**GROUP, **command("/start@beacon_bot")}, "message", intake.start_in_group),
        ({**GROUP, **command("/start")}, "message", intake.start_in_group),
        ({**GROUP, **command("/nonsense@beacon_bot")}, "message", group_command),
        ({**GROUP, "text": "a coordinator chatting"}, "message", None),
        ({"chat": {"id": -1007, "type": "channel", "title": "C"}, **command("/start")}, "channel_post", None),
    ],
    ids=[
        "private /start",
        "private /start@bot",
        "private /x",
        "private /status with code",
        "private /help",
        "private unknown command",
        "private text",
        "private sticker",
        "private location",
        "edited /start",
        "group /start to bot",
        "group bare /start",
        "group unknown command to bot",
        "group chatter",
        "channel post",
    ],
)
def test_updates_reach_the_handler_registered_for_them(application, message, kind, expected):
    """Handler order: reporter commands, answers, then fallbacks; groups reach only /start and commands."""
    assert route(application, message, kind) is expected


def test_error_handler_is_registered(application):
    """Unhandled exceptions go to the content-free error handler."""
    assert list(application.error_handlers) == [on_error]


@pytest.fixture
def restore_log_levels():
    """Put back the logger levels configure_logging changes, for the tests that follow."""
    names = ["", "httpx", "httpcore", "telegram", "aiosqlite", "apscheduler", "tornado.access"]
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = {handler: list(handler.filters) for handler in logging.getLogger().handlers}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = list(handlers)
    for handler, filters in handlers.items():
        handler.filters[:] = filters


@pytest.mark.usefixtures("restore_log_levels")
def test_logging_keeps_token_and_message_leaking_libraries_quiet_even_at_debug():
    """At DEBUG, httpx (URLs with the token) and telegram (update contents) stay at safe levels."""
    configure_logging("DEBUG")
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("telegram").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("telegram.ext.Application").getEffectiveLevel() == logging.INFO
    configure_logging("ERROR")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.ERROR


def test_redacting_filter_hides_the_token_in_messages_and_tracebacks():
    """A token that reaches a log line, even inside an exception's traceback, is replaced."""
    record_filter = RedactingFilter([VALID_TOKEN])
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{VALID_TOKEN}/getMe")
    except ConnectionError as exc:
        record = logging.LogRecord(
            "telegram",
            logging.ERROR,
            __file__,
            1,
            "calling %s",
            (f"/bot{VALID_TOKEN}/getMe",),
            (type(exc), exc, None),
        )
    assert record_filter.filter(record)
    formatted = logging.Formatter().format(record)
    assert VALID_TOKEN not in formatted
    assert "calling /bot<redacted>/getMe" in formatted
    assert "ConnectionError: cannot reach https://api.telegram.org/bot<redacted>/getMe" in formatted


@pytest.mark.parametrize(
    ("url", "path"),
    [("https://bot.example.org/telegram/hook", "telegram/hook"), ("https://bot.example.org", "")],
)
def test_webhook_is_served_on_the_public_urls_path(url, path):
    """The local webhook server listens on the same path as the public URL."""
    assert webhook_path(url) == path


@pytest.mark.parametrize("url", ["bot.example.org/hook", "ftp://bot.example.org/hook", "https://x.org/?a=1"])
def test_webhook_url_must_be_http(url):
    """A webhook URL without an http(s) scheme, or with a query, is refused."""
    with pytest.raises(ValueError, match="--webhook-url"):
        webhook_path(url)
