"""The composition root: build the Telegram Application from Settings, wire storage and handlers, run it.

This is the only module that knows every layer. Resources are opened in ``post_init`` and closed in
``post_shutdown``; every handler is registered in ``register_handlers``, in one place.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiosqlite
import tornado.web
from telegram import Bot, BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.constants import FloodLimit
from telegram.error import NetworkError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import LogLevel, Settings
from bot.crypto import Keyring
from bot.domain.gazetteer import Gazetteer, load_gazetteer
from bot.domain.routing import load_routing
from bot.http import make_request
from bot.i18n import SHIPPED_LOCALES, Translator, get_translator, load_catalogs
from bot.persistence import SQLitePersistence, flush_after_update
from bot.services.alerts import AlertDispatcher
from bot.services.casework import CaseworkService
from bot.services.escalation import EscalationService
from bot.services.export import ExportService, ExportSource
from bot.services.export_formats import area_lookup
from bot.services.export_sinks import parse_recipients
from bot.services.insight import InsightService
from bot.services.intake import IntakeService
from bot.services.relay import RelayService, collect_held
from bot.updates import PerChatUpdateProcessor
from handlers.common import DEFAULT_LOCALE_KEY
from handlers.coordinators import actions as staff
from handlers.coordinators import export as export_handlers
from handlers.coordinators import insight, watch
from handlers.coordinators.actions import CASEWORK_KEY, CaseworkContext
from handlers.coordinators.delivery import ALERTS_KEY, AlertRunner, deliver_alerts
from handlers.coordinators.export import EXPORT_KEY, ExportContext
from handlers.coordinators.gateway import TelegramAlertGateway
from handlers.coordinators.insight import INSIGHT_KEY, InsightContext, daily_digest
from handlers.coordinators.watch import ESCALATION_KEY, EscalationContext, escalate
from handlers.errors import on_error
from handlers.fallback import group_command, unknown_button
from handlers.intake import conversation as intake
from handlers.intake.conversation import LOCALE
from storage.cases import CaseStore
from storage.conversations import ConversationStore
from storage.coordination import CoordinationStore
from storage.db import StorageError, open_database
from storage.export import ExportReader, record_export
from storage.maintenance import MaintenanceStore
from storage.migrations import migrate
from storage.relay import RelayStore
from storage.stats import StatsStore
from storage.workflow import StaffStore, WorkflowStore

__all__ = [
    "DATABASE_KEY",
    "HEALTH_PATH",
    "BeaconApplication",
    "HealthHandler",
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
ALERT_BOT_KEY: Final = "beacon.alert_bot"

# Retries of a request that Telegram answered with 429 "retry after": enough to ride out a burst,
# few enough that a reply does not arrive minutes late.
RATE_LIMIT_RETRIES: Final = 3
# How often the outbox is checked for alerts that are due (new ones are sent at once after a commit).
ALERT_INTERVAL_SECONDS: Final = 2.0
# Rate-limit events older than this are deleted hourly (the limit looks back one hour).
RATE_EVENTS_KEPT: Final = timedelta(hours=2)
# bot_state keys holding the language a coordinators' group chose with /language.
CHAT_LOCALE_PREFIX: Final = "locale:chat:"
# The daily digest of open cases is posted at this hour, in the coordinators' time zone.
DIGEST_HOUR: Final = 8
# In webhook mode, GET on this path of the webhook's own address answers whether the bot is up.
HEALTH_PATH: Final = "/healthz"

# Libraries whose chatty levels would put secrets or reporters' words in the log: httpx logs each
# request URL (it contains the bot token); python-telegram-bot at DEBUG logs every API call's
# parameters and every update (message text, names); aiosqlite at DEBUG logs SQL parameters;
# tornado's access log records the webhook path; Pillow at DEBUG logs every EXIF tag of a photo it
# reads (the author's name, GPS, a description) while Beacon strips them.
_QUIET_LOGGERS: Final[dict[str, int]] = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "aiosqlite": logging.INFO,
    "apscheduler": logging.INFO,
    "tornado.access": logging.WARNING,
    "PIL": logging.INFO,
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


class Resources:
    """The database connection and keys, opened once and shared by persistence and services.

    python-telegram-bot loads persisted user data in ``Application.initialize``, before ``post_init``
    runs, so the connection opens on first use rather than in ``post_init``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring = Keyring(settings.secret_key_bytes())
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> aiosqlite.Connection:
        """Open (and migrate) the database on first use; raises ``storage.db.StorageError``."""
        async with self._lock:
            if self._conn is None:
                conn = await open_database(self.settings.database)
                applied = await migrate(conn)
                if applied:
                    _LOG.info("Applied migrations: %s", ", ".join(applied))
                self._conn = conn
            return self._conn

    async def conversation_store(self) -> ConversationStore:
        return ConversationStore(await self.connection(), self.keyring)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


def get_database(application: Application[Any, Any, Any, Any, Any, Any]) -> aiosqlite.Connection:
    """Return the connection opened at start-up; raises ``RuntimeError`` before it was opened."""
    conn = application.bot_data.get(DATABASE_KEY)
    if not isinstance(conn, aiosqlite.Connection):
        raise RuntimeError("the database is not open: the application has not been initialised")
    return conn


def _export_service(
    settings: Settings,
    keyring: Keyring,
    conn: aiosqlite.Connection,
    staff_store: StaffStore,
    gazetteer: Gazetteer,
) -> ExportService:
    """The bot's /export: a read-only snapshot per export, audited on the bot's connection."""

    async def open_source(decrypt: bool) -> ExportSource:
        return await ExportReader.open(settings.database, keyring if decrypt else None)

    async def record(actor_id: int | None, details: Mapping[str, str | int | bool | None]) -> None:
        await record_export(conn, actor_id=actor_id, details=dict(details))

    areas = area_lookup(gazetteer)

    return ExportService(
        staff=staff_store,
        open_source=open_source,
        record=record,
        areas=areas,
        recipients=parse_recipients(settings.export_recipients),
    )


def register_handlers(application: BeaconApplication) -> None:
    """Register every handler, in the order they must be tried.

    Within a group python-telegram-bot runs only the first handler whose filters match, so specific
    handlers come first and the fallbacks last. Group 0 answers the update; group 1 then writes the
    reporter's conversation state to the database before the next update is handled.
    """
    private = filters.ChatType.PRIVATE
    new_private = filters.UpdateType.MESSAGE & private
    edited_private = filters.UpdateType.EDITED_MESSAGE & private
    new_in_group = filters.UpdateType.MESSAGE & filters.ChatType.GROUPS

    # 1. The reporter's commands, in private chats only.
    commands = {
        "start": intake.start,
        "x": intake.exit_and_wipe,
        "language": intake.language,
        "help": intake.help_command,
        "status": intake.status,
        "add": intake.add,
        "delete": intake.delete,
    }
    for name, callback in commands.items():
        application.add_handler(CommandHandler(name, callback, filters=new_private))
    # 2. Buttons of the reporter's conversation ("s:" steps, "l:" languages); anything else is refused.
    application.add_handler(CallbackQueryHandler(intake.on_callback, pattern=r"^(s|l):"))
    application.add_handler(CallbackQueryHandler(staff.on_card_button, pattern=r"^w:"))
    application.add_handler(CallbackQueryHandler(export_handlers.on_export_button, pattern=r"^x:"))
    application.add_handler(CallbackQueryHandler(staff.on_group_language_button, pattern=r"^gl:"))
    application.add_handler(CallbackQueryHandler(unknown_button))
    # 3. Answers: anything else sent privately, except commands and service messages; edits are declined.
    application.add_handler(
        MessageHandler(new_private & ~filters.COMMAND & ~filters.StatusUpdate.ALL, intake.on_message)
    )
    application.add_handler(MessageHandler(edited_private, intake.on_edited))
    # 4. Caseworkers' commands, in the coordinators' chats or privately (each checks the role itself).
    staff_commands = {
        "queue": staff.queue_command,
        "mine": staff.mine_command,
        "case": staff.case_command,
        "grant": staff.grant_command,
        "revoke": staff.revoke_command,
        "duty": staff.duty_command,
        "reply": staff.reply_command,
        "note": staff.note_command,
        "notes": staff.notes_command,
        "priority": staff.priority_command,
        "link": staff.link_command,
        "tag": staff.tag_command,
        "find": staff.find_command,
        "stats": insight.stats_command,
        "hotspots": insight.hotspots_command,
        "export": export_handlers.export_command,
    }
    for name, callback in staff_commands.items():
        application.add_handler(CommandHandler(name, callback, filters=filters.UpdateType.MESSAGE))
    application.add_handler(CommandHandler("help", staff.staff_help, filters=new_in_group))
    application.add_handler(CommandHandler("language", staff.group_language, filters=new_in_group))
    # Who joins or leaves the coordinators' group is told to the admins.
    application.add_handler(ChatMemberHandler(watch.on_member_change, ChatMemberHandler.CHAT_MEMBER))
    # A reply to a ticket card goes to the case's reporter (the handler checks chat, card and role).
    application.add_handler(
        MessageHandler(
            new_in_group & filters.REPLY & ~filters.COMMAND & ~filters.StatusUpdate.ALL, staff.on_card_reply
        )
    )
    # 5. Fallbacks: an unknown command in private; in groups, /start once and commands naming the bot.
    application.add_handler(MessageHandler(new_private & filters.COMMAND, intake.unknown_command))
    application.add_handler(CommandHandler("start", intake.start_in_group, filters=new_in_group))
    application.add_handler(MessageHandler(new_in_group & filters.COMMAND, group_command))
    # Write-through persistence: after every update, before the next.
    application.add_handler(TypeHandler(Update, flush_after_update), group=1)

    application.add_error_handler(on_error)


def _private_commands(locale: str) -> list[BotCommand]:
    """Return the command menu shown in private chats, translated into ``locale``."""
    t = get_translator(locale)
    # TRANSLATORS: Descriptions in Telegram's command menu (at most 256 characters each).
    return [
        BotCommand("start", t.pgettext("command menu", "Begin a report")),
        BotCommand("status", t.pgettext("command menu", "Check your report and replies")),
        BotCommand("add", t.pgettext("command menu", "Add information to your report")),
        BotCommand("delete", t.pgettext("command menu", "Withdraw your report")),
        BotCommand("language", t.pgettext("command menu", "Change the language")),
        BotCommand("x", t.pgettext("command menu", "Stop and clear this chat")),
        BotCommand("help", t.pgettext("command menu", "Help")),
    ]


async def _set_commands(application: BeaconApplication, default_locale: str) -> None:
    """Publish the private-chat command menu: a default one, and one per shipped language."""
    bot = application.bot
    scope = BotCommandScopeAllPrivateChats()
    try:
        await bot.set_my_commands(_private_commands(default_locale), scope=scope)
        for locale, language in _menu_languages().items():
            await bot.set_my_commands(_private_commands(locale), scope=scope, language_code=language)
    except NetworkError as exc:
        # The menu is a convenience: a bot without it still answers /start. (Includes BadRequest.)
        _LOG.warning("Could not set the command menu: %s", type(exc).__name__)


def _menu_languages() -> dict[str, str]:
    """Shipped locale → the two-letter ISO 639-1 code Telegram keys command menus by.

    "zh_Hans" is "zh" (a Traditional Chinese client still reads it; Telegram has one "zh" menu), and a
    locale without a two-letter code (Filipino "fil") keeps the default menu.
    """
    menus: dict[str, str] = {}
    for locale in SHIPPED_LOCALES:
        language = locale.split("_", 1)[0]
        if len(language) == 2 and language not in menus.values() and locale != "zh_Hant":
            menus[locale] = language
    return menus


def build_application(
    settings: Settings, *, overall_max_rate: float = FloodLimit.MESSAGES_PER_SECOND
) -> BeaconApplication:
    """Build the Application for ``settings``: API endpoint, rate limiter, persistence, hooks, handlers.

    ``overall_max_rate`` paces every request to a chat (Telegram's ~30 messages/s); the intake benchmark
    passes 0 to measure what the bot can turn around beyond that pacing. Nothing is opened yet. Raises
    ``bot.i18n.CatalogError`` if a shipped catalog is broken and ``bot.domain.gazetteer.GazetteerError``
    if the gazetteer is.
    """
    load_catalogs()
    gazetteer = load_gazetteer(settings.gazetteer)
    routing = load_routing(settings.routing)
    resources = Resources(settings)

    async def post_init(application: BeaconApplication) -> None:
        """Opens the database, wires the services, publishes the command menu, schedules the idle sweep."""
        conn = await resources.connection()
        application.bot_data[DATABASE_KEY] = conn
        relay_store = RelayStore(conn, resources.keyring)
        service = IntakeService(
            CaseStore(conn, resources.keyring),
            resources.keyring,
            reports_per_hour=settings.reports_per_hour,
            inbox=functools.partial(collect_held, relay_store),
        )
        job_queue = application.job_queue
        if job_queue is None:
            raise RuntimeError("the job queue is required (python-telegram-bot[job-queue])")
        committed = None
        if settings.coordinator_chat_id is not None:
            cases = CaseStore(conn, resources.keyring)
            # Its own Bot, without the application's rate limiter: the dispatcher paces the group itself.
            alert_bot = Bot(
                settings.bot_token.get_secret_value(),
                base_url=f"{settings.api_url}/bot",
                base_file_url=f"{settings.api_url}/file/bot",
                request=make_request(settings.http_client),
                get_updates_request=make_request(settings.http_client, get_updates=True),
            )
            await alert_bot.initialize()
            application.bot_data[ALERT_BOT_KEY] = alert_bot
            coordination = CoordinationStore(conn, cases)
            chat_locales = {
                int(key.removeprefix(CHAT_LOCALE_PREFIX)): value
                for key, value in (await coordination.values_with_prefix(CHAT_LOCALE_PREFIX)).items()
                if value in SHIPPED_LOCALES and key.removeprefix(CHAT_LOCALE_PREFIX).lstrip("-").isdigit()
            }

            async def save_chat_locale(chat_id: int, locale: str) -> None:
                await coordination.set_value(f"{CHAT_LOCALE_PREFIX}{chat_id}", locale)

            def translator_for_chat(chat_id: int) -> Translator:
                """A group's chosen language; a member of staff's own (private chat id = user id)."""
                chosen = chat_locales.get(chat_id) or application.user_data.get(chat_id, {}).get(LOCALE)
                return get_translator(chosen if chosen in SHIPPED_LOCALES else settings.ticket_locale)

            gateway = TelegramAlertGateway(
                alert_bot,
                translator_for_chat,
                gazetteer,
                ZoneInfo(settings.coordinator_timezone),
                operators=settings.admins,
                full=settings.group_detail == "full",
            )
            default_chat = settings.coordinator_chat_id
            dispatcher = AlertDispatcher(
                coordination,
                gateway,
                cases.get_case,
                default_chat,
                route=lambda case: routing.chat_for(case.report, default_chat),
            )
            application.bot_data[ALERTS_KEY] = AlertRunner(dispatcher)
            job_queue.run_repeating(deliver_alerts, interval=ALERT_INTERVAL_SECONDS, first=1, name="alerts")

            def committed(context: ContextTypes.DEFAULT_TYPE) -> None:
                """Deliver the new alert now rather than at the next tick."""
                job_queue.run_once(deliver_alerts, 0, name="alerts now")

            async def coordinator_chats() -> list[int]:
                """Every coordinators' group (routed ones too), before and after any migration."""
                configured = routing.chats(default_chat)
                return sorted({*configured, *[await dispatcher.resolve(chat) for chat in configured]})

            staff_store = StaffStore(conn)
            granted = await staff_store.seed_admins(settings.admins)
            if granted:
                _LOG.info("Admin role granted from BEACON_ADMINS to %d account(s)", len(granted))
            workflow = WorkflowStore(conn, resources.keyring)
            casework = CaseworkService(staff_store, workflow, cases)
            relay = RelayService(casework, cases, relay_store)
            application.bot_data[CASEWORK_KEY] = CaseworkContext(
                service=casework,
                gazetteer=gazetteer,
                locale=settings.ticket_locale,
                timezone=ZoneInfo(settings.coordinator_timezone),
                chat_ids=coordinator_chats,
                relay=relay,
                case_for_card=coordination.case_for_message,
                committed=committed,
                full=settings.group_detail == "full",
                chat_locales=chat_locales,
                save_chat_locale=save_chat_locale,
            )

            async def ticket_of(case_id: str) -> tuple[int, int | None] | None:
                ticket = await coordination.ticket(case_id)
                return (
                    None
                    if ticket is None or ticket.card_message_id is None
                    else (ticket.chat_id, ticket.thread_id)
                )

            application.bot_data[ESCALATION_KEY] = EscalationContext(
                EscalationService(
                    workflow,
                    staff_store,
                    timedelta(minutes=settings.p1_escalation_minutes),
                    memory=coordination,
                ),
                ticket_of,
                # Re-alerts come out of the same per-group budget as the alerts (20 messages a minute).
                take_slot=dispatcher.take_slot,
            )
            job_queue.run_repeating(escalate, interval=60, first=30, name="escalation")
            application.bot_data[INSIGHT_KEY] = InsightContext(InsightService(casework, StatsStore(conn)))
            application.bot_data[EXPORT_KEY] = ExportContext(
                _export_service(settings, resources.keyring, conn, staff_store, gazetteer)
            )
            job_queue.run_daily(
                daily_digest,
                time=dt_time(DIGEST_HOUR, 0, tzinfo=ZoneInfo(settings.coordinator_timezone)),
                name="daily digest",
            )
        else:
            _LOG.warning("BEACON_COORDINATOR_CHAT_ID is not set: reports are stored but nobody is alerted")
        application.bot_data[intake.SERVICES_KEY] = intake.IntakeContext(
            intake=service,
            gazetteer=gazetteer,
            idle_timeout=timedelta(minutes=settings.idle_timeout_minutes),
            flood={},
            committed=committed,
        )
        await _set_commands(application, settings.default_locale)
        job_queue.run_repeating(intake.sweep_idle, interval=60, first=5, name="idle sweep")

        async def prune_rate_events(_context: ContextTypes.DEFAULT_TYPE) -> None:
            """Rate-limit events (a pseudonym and a time) are kept only as long as the hourly limit needs."""
            try:
                await CaseStore(conn, resources.keyring).prune_rate_events(
                    datetime.now(UTC) - RATE_EVENTS_KEPT
                )
            except StorageError as error:
                _LOG.warning("Rate events not pruned: %s", type(error).__name__)

        job_queue.run_repeating(prune_rate_events, interval=3600, first=60, name="rate events")

    async def post_shutdown(application: BeaconApplication) -> None:
        """Closes the database."""
        application.bot_data.pop(DATABASE_KEY, None)
        alert_bot = application.bot_data.pop(ALERT_BOT_KEY, None)
        if isinstance(alert_bot, Bot):
            await alert_bot.shutdown()
        await resources.close()

    persistence = SQLitePersistence(resources.conversation_store)
    application: BeaconApplication = (
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        # python-telegram-bot appends the token: https://api.telegram.org/bot<token>/<method>.
        .base_url(f"{settings.api_url}/bot")
        .base_file_url(f"{settings.api_url}/file/bot")
        .request(make_request(settings.http_client))
        .get_updates_request(make_request(settings.http_client, get_updates=True))
        .rate_limiter(AIORateLimiter(overall_max_rate=overall_max_rate, max_retries=RATE_LIMIT_RETRIES))
        .persistence(persistence)
        .concurrent_updates(
            PerChatUpdateProcessor(settings.concurrent_updates) if settings.concurrent_updates > 1 else False
        )
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    persistence.follow(application.user_data)
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
    path = parts.path.lstrip("/")
    if path.rstrip("/") == HEALTH_PATH.lstrip("/"):
        raise ValueError(f"--webhook-url must not have the path {HEALTH_PATH}, which serves the health check")
    return path


class HealthHandler(tornado.web.RequestHandler):
    """``GET /healthz``: 200 and ``{"status": "ok", "outbox_backlog": N}`` while the bot reads its database,
    503 and ``{"status": "unavailable"}`` when it cannot. Nothing about cases or reporters is in it."""

    SUPPORTED_METHODS = ("GET",)

    def initialize(self, backlog: Callable[[], Awaitable[int]]) -> None:
        self.backlog = backlog

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")

    async def get(self) -> None:
        try:
            waiting = await self.backlog()
        except (RuntimeError, StorageError, aiosqlite.Error) as exc:
            _LOG.warning("Health check failed: %s", type(exc).__name__)
            self.set_status(503)
            await self.finish({"status": "unavailable"})
            return
        await self.finish({"status": "ok", "outbox_backlog": waiting})


async def _serve_health(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Add ``HEALTH_PATH`` to the webhook's web server, once it runs (a job scheduled at start-up).

    python-telegram-bot builds its tornado application inside ``Updater.start_webhook`` and offers no
    hook for more routes, so the application is reached through the updater's server; tornado's
    ``add_handlers`` is public. Should python-telegram-bot change that, the route is missing (404) and a
    warning is logged: the webhook itself is unaffected.
    """
    application = context.application
    server = getattr(getattr(application.updater, "_httpd", None), "_http_server", None)
    web_app = getattr(server, "request_callback", None)
    if not isinstance(web_app, tornado.web.Application):
        _LOG.warning("No health check at %s: the webhook server was not found", HEALTH_PATH)
        return

    async def backlog() -> int:
        return (await MaintenanceStore(get_database(application)).outbox_backlog()).count

    web_app.add_handlers(r".*", [(HEALTH_PATH, HealthHandler, {"backlog": backlog})])


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
    if application.job_queue is None:
        raise RuntimeError("the job queue is required (python-telegram-bot[job-queue])")
    # Jobs start with the application, right after the webhook server does. Start-up (getMe, migrations,
    # the command menus, setWebhook) may take longer than APScheduler's default grace of one second.
    application.job_queue.run_once(
        _serve_health, 0, name="health check", job_kwargs={"misfire_grace_time": None}
    )
    application.run_webhook(
        listen=listen,
        port=port,
        url_path=path,
        webhook_url=webhook_url,
        secret_token=secret_token,
        allowed_updates=Update.ALL_TYPES,
        drop_pending_updates=False,
    )
