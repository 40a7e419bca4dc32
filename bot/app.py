"""The composition root: build the Telegram Application from Settings, wire storage and handlers, run it.

This is the only module that knows every layer. Resources are opened in ``post_init`` and closed in
``post_shutdown``; every handler is registered in ``register_handlers``, in one place.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import aiosqlite
from telegram import BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.error import NetworkError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    filters,
)

from bot.config import LogLevel, Settings
from bot.i18n import SHIPPED_LOCALES, get_translator, load_catalogs
from handlers.common import DEFAULT_LOCALE_KEY
from handlers.errors import on_error
from handlers.fallback import group_command, not_understood
from handlers.start import start
from storage.db import open_database
from storage.migrations import migrate

__all__ = [
    "DATABASE_KEY",
    "BeaconApplication",
    "RedactingFilter",
    "build_application",
    "configure_logging",
    "get_database",
    "register_handlers",
    "run_polling",
    "run_webhook",
    "start_application",
    "stop_application",
    "webhook_path",
]

_LOG = logging.getLogger(__name__)

BeaconApplication = Application[
    ExtBot[Any],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]

# Key in ``application.bot_data`` for the open database connection; read it with ``get_database``.
DATABASE_KEY: Final = "beacon.database"

# Retries of a request that Telegram answered with 429 "retry after": enough to ride out a burst,
# few enough that a reply does not arrive minutes late.
RATE_LIMIT_RETRIES: Final = 3

# Libraries whose chatty levels would put secrets or reporters' words in the log: httpx logs each
# request URL (it contains the bot token); python-telegram-bot at DEBUG logs every API call's
# parameters and every update (message text, names); aiosqlite at DEBUG logs SQL parameters;
# tornado's access log records the webhook path.
_QUIET_LOGGERS: Final[dict[str, int]] = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "aiosqlite": logging.INFO,
    "apscheduler": logging.INFO,
    "tornado.access": logging.WARNING,
}


class RedactingFilter(logging.Filter):
    """Replace secret strings in a log record, traceback included, before any handler writes it."""

    def __init__(self, hidden: Iterable[str]) -> None:
        super().__init__()
        self.hidden = tuple(secret for secret in hidden if secret)

    def _redact(self, text: str) -> str:
        for secret in self.hidden:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the traceback is formatted (and cleaned) once.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def configure_logging(level: LogLevel, redact: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``, keeping libraries that would leak tokens or message text quieter.

    Strings in ``redact`` (the bot token) are replaced in every line written, as a second line of
    defence should a library put one in an exception message.
    """
    numeric = logging.getLevelName(level)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(numeric)
    for name, floor in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
    secrets_to_hide = tuple(redact)
    if secrets_to_hide:
        for handler in root.handlers:
            if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
                handler.addFilter(RedactingFilter(secrets_to_hide))


def get_database(application: Application[Any, Any, Any, Any, Any, Any]) -> aiosqlite.Connection:
    """Return the connection opened in ``post_init``; raises ``RuntimeError`` before it ran."""
    conn = application.bot_data.get(DATABASE_KEY)
    if not isinstance(conn, aiosqlite.Connection):
        raise RuntimeError("the database is not open: the application has not been initialised")
    return conn


def register_handlers(application: BeaconApplication) -> None:
    """Register every handler, in the order they must be tried.

    Within group 0 python-telegram-bot runs only the first handler whose filters match, so specific
    handlers come first and the fallbacks last. Only new messages are handled: an edited message is
    not a new request. In groups the bot speaks only when a command names it (``/x@beacon_bot``).
    """
    new_private = filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE
    new_in_group = filters.UpdateType.MESSAGE & filters.ChatType.GROUPS

    # 1. Commands in private chats.
    application.add_handler(CommandHandler("start", start, filters=new_private))
    # 2. Fallbacks, last: anything else a person sends privately (unknown command, photo, sticker...),
    #    except service messages; and commands addressed to the bot in a group.
    application.add_handler(MessageHandler(new_private & ~filters.StatusUpdate.ALL, not_understood))
    application.add_handler(MessageHandler(new_in_group & filters.COMMAND, group_command))

    application.add_error_handler(on_error)


def _private_commands(locale: str) -> list[BotCommand]:
    """Return the command menu shown in private chats, translated into ``locale``."""
    translator = get_translator(locale)
    # TRANSLATORS: Description of the /start command in Telegram's command menu (at most 256 characters).
    return [BotCommand("start", translator.pgettext("command menu", "Begin"))]


async def _set_commands(application: BeaconApplication, default_locale: str) -> None:
    """Publish the private-chat command menu: a default one, and one per shipped language."""
    bot = application.bot
    scope = BotCommandScopeAllPrivateChats()
    try:
        await bot.set_my_commands(_private_commands(default_locale), scope=scope)
        for locale in SHIPPED_LOCALES:
            # Telegram keys menus by two-letter ISO 639-1 language code: "zh_Hans" is "zh".
            language = locale.split("_", 1)[0]
            await bot.set_my_commands(_private_commands(locale), scope=scope, language_code=language)
    except NetworkError as exc:
        # The menu is a convenience: a bot without it still answers /start. (Includes BadRequest.)
        _LOG.warning("Could not set the command menu: %s", type(exc).__name__)


def build_application(settings: Settings) -> BeaconApplication:
    """Build the Application for ``settings``: API endpoint, rate limiter, lifecycle hooks, handlers.

    Nothing is opened yet; the database is opened (and migrated) in ``post_init``. Raises
    ``bot.i18n.CatalogError`` if a shipped catalog is broken.
    """
    load_catalogs()

    async def post_init(application: BeaconApplication) -> None:
        """Opens and migrates the database, then publishes the command menu."""
        conn = await open_database(settings.database)
        application.bot_data[DATABASE_KEY] = conn
        applied = await migrate(conn)
        if applied:
            _LOG.info("Applied migrations: %s", ", ".join(applied))
        await _set_commands(application, settings.default_locale)

    async def post_shutdown(application: BeaconApplication) -> None:
        """Closes the database if ``post_init`` opened it."""
        conn = application.bot_data.pop(DATABASE_KEY, None)
        if isinstance(conn, aiosqlite.Connection):
            await conn.close()

    application: BeaconApplication = (
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        # python-telegram-bot appends the token: https://api.telegram.org/bot<token>/<method>.
        .base_url(f"{settings.api_url}/bot")
        .base_file_url(f"{settings.api_url}/file/bot")
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data[DEFAULT_LOCALE_KEY] = settings.default_locale
    register_handlers(application)
    return application


async def start_application(application: BeaconApplication) -> None:
    """Initialise and start the application and its long polling, in this event loop.

    `run_polling` would block and own the loop; here the sandbox shares it, so the lifecycle hooks that
    `run_polling` calls (`post_init`, `post_shutdown`) are called explicitly.
    """
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    if application.updater is None:
        raise RuntimeError("the application was built without an updater")
    # Pending updates are never dropped: each may be a report.
    await application.updater.start_polling(
        poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
    )


async def stop_application(application: BeaconApplication) -> None:
    """Stop polling, the application and its resources, tolerating a half-started application."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


def run_polling(settings: Settings) -> None:
    """Configure logging and run the bot with long polling until SIGINT or SIGTERM."""
    configure_logging(settings.log_level, redact=[settings.bot_token.get_secret_value()])
    application = build_application(settings)
    # Pending updates are never dropped: each may be a report sent while the bot was down.
    application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)


def webhook_path(webhook_url: str) -> str:
    """Return the local path to serve for ``webhook_url``; raises ``ValueError`` if it is not http(s)."""
    parts = urlsplit(webhook_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("--webhook-url must be an http:// or https:// URL without query or fragment")
    return parts.path.lstrip("/")


def run_webhook(
    settings: Settings,
    webhook_url: str,
    listen: str = "127.0.0.1",
    port: int = 8443,
    secret_token: str | None = None,
) -> None:
    """Configure logging and serve a webhook on ``listen:port`` until SIGINT or SIGTERM.

    ``webhook_url`` is the public https URL Telegram posts to (usually a reverse proxy in front of
    ``listen:port``); its path is served locally. Without ``secret_token`` a random one is made for
    this run, so only Telegram, which learns it from setWebhook, can post updates.
    Raises ``ValueError`` if ``webhook_url`` is not an http(s) URL.
    """
    path = webhook_path(webhook_url)
    secret_token = secret_token or secrets.token_urlsafe(32)
    configure_logging(settings.log_level, redact=[settings.bot_token.get_secret_value(), secret_token])
    application = build_application(settings)
    application.run_webhook(
        listen=listen,
        port=port,
        url_path=path,
        webhook_url=webhook_url,
        secret_token=secret_token,
        allowed_updates=Update.ALL_TYPES,
        drop_pending_updates=False,
    )
