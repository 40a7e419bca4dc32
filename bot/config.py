"""Settings: read ``BEACON_*`` variables (and an optional ``.env`` file) once, validate, and pass them down.

``load_settings`` turns validation failures into a ``ConfigError`` whose message is one line naming the
variable, and never contains the offending value (it may be a token or key pasted in the wrong place).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from bot.i18n import SHIPPED_LOCALES
from bot.keys import KEY_BYTES, InvalidKey, decode_secret_key
from bot.services.export_sinks import ExportError, parse_recipients

__all__ = [
    "ENV_PREFIX",
    "MAX_RETENTION_DAYS",
    "ConfigError",
    "LogLevel",
    "Settings",
    "env_name",
    "load_settings",
]

ENV_PREFIX = "BEACON_"

# The longest retention `beacon purge` accepts: a century (a longer one would reach back before year 1).
MAX_RETENTION_DAYS = 36_500

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# BotFather's tokens look like "123456789:AAE...": a bot id, a colon, then URL-safe characters.
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")

# Fixed explanations per field. Pydantic's own messages are not used: some of them quote the input.
_PROBLEMS: dict[str, str] = {
    # Help text, not a password (bandit B105 mistakes it for one).
    "bot_token": "must be the token BotFather gave you, like 123456789:AAE-example",  # nosec B105
    "api_url": "must be an http:// or https:// URL without query or fragment, like https://api.telegram.org",
    "database": "must be a file path, like data/beacon.db",
    "coordinator_chat_id": "must be a Telegram chat id, a whole number like -1001234567890",
    "admins": "must be Telegram user ids separated by commas, like 1234,5678",
    "secret_key": f"must be base64 of at least {KEY_BYTES} random bytes (create one with: beacon keygen)",
    "default_locale": f"must be one of the shipped locales: {', '.join(SHIPPED_LOCALES)}",
    "log_level": "must be one of DEBUG, INFO, WARNING, ERROR",
    "idle_timeout_minutes": "must be a whole number of minutes from 1 to 1440",
    "reports_per_hour": "must be a whole number from 1 to 1000",
    "gazetteer": "must be the path of a JSON gazetteer file",
    "coordinator_locale": f"must be one of the shipped locales: {', '.join(SHIPPED_LOCALES)}",
    "coordinator_timezone": "must be an IANA time zone name, like Asia/Phnom_Penh or UTC",
    "p1_escalation_minutes": "must be a whole number of minutes from 1 to 1440",
    "group_detail": "must be minimal or full",
    "routing": "must be the path of a TOML routing file",
    "retention_days": f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}",
    "export_recipients": "must be age public keys (age1...) separated by commas",
    "http_client": "must be httpx or aiohttp",
    "concurrent_updates": "must be a whole number from 1 to 256",
}


class ConfigError(Exception):
    """The configuration is missing or invalid; the message is one line and holds no secret value."""


def env_name(field: str) -> str:
    """Return the environment variable that sets ``field``, e.g. ``BEACON_BOT_TOKEN``."""
    return f"{ENV_PREFIX}{field.upper()}"


class Settings(BaseSettings):
    """Everything Beacon reads from its environment; build it with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # An empty variable (``BEACON_ADMINS=``, as copied from .env.example) means "not set".
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    bot_token: SecretStr
    api_url: str = "https://api.telegram.org"
    database: Path = Path("data/beacon.db")
    coordinator_chat_id: int | None = None
    # NoDecode: pydantic-settings would otherwise parse the variable as JSON; ours is "1,2, 3".
    admins: Annotated[list[int], NoDecode] = Field(default_factory=list)
    secret_key: SecretStr
    default_locale: str = "en"
    log_level: LogLevel = "INFO"
    # A reporter's unfinished conversation is wiped after this long without an answer.
    idle_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Reports an hour from one account before further ones are quarantined for review in bulk.
    reports_per_hour: int = Field(default=5, ge=1, le=1000)
    # Optional JSON file of extra gazetteer countries and areas (see bot/data/gazetteer.json).
    gazetteer: Path | None = None
    # What the coordinators' group sees on a card: "minimal" (no free text, place text or identity; details
    # on demand, privately) or "full" (those too). A group can be infiltrated: minimal is the default.
    group_detail: Literal["minimal", "full"] = "minimal"
    # Optional TOML file of routing rules sending cases to other coordinators' groups (bot/domain/routing.py).
    routing: Path | None = None
    # A P1 case not acknowledged within this many minutes is re-alerted, naming those on duty.
    p1_escalation_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # Language and time zone of the coordinators' tickets (default: BEACON_DEFAULT_LOCALE, UTC).
    coordinator_locale: str | None = None
    coordinator_timezone: str = "UTC"
    # `beacon purge` erases what reporters wrote about a case closed (and untouched) for longer than this.
    retention_days: int = Field(default=90, ge=1, le=MAX_RETENTION_DAYS)
    # age public keys the bot's /export encrypts the full level to (it refuses the full level without).
    export_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The HTTP client under python-telegram-bot: aiohttp (bot/http.py, less CPU per request) or its own httpx.
    http_client: Literal["httpx", "aiohttp"] = "aiohttp"
    # How many updates of different chats are handled at once (bot/updates.py); 1: one at a time. One
    # chat's updates always run in order.
    concurrent_updates: int = Field(default=16, ge=1, le=256)

    @field_validator("bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr) -> SecretStr:
        if not _BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(_PROBLEMS["bot_token"])
        return value

    @field_validator("api_url")
    @classmethod
    def _normalise_api_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ValueError(_PROBLEMS["api_url"]) from None
        # Braces would be read by python-telegram-bot as a "{token}" placeholder.
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.query
            or parts.fragment
            or "{" in url
            or "}" in url
        ):
            raise ValueError(_PROBLEMS["api_url"])
        return url

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("export_recipients", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
        return value

    @field_validator("export_recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        if not all(item.startswith("age1") for item in value):
            raise ValueError(_PROBLEMS["export_recipients"])
        try:
            parse_recipients(value)
        except ExportError:
            raise ValueError(_PROBLEMS["export_recipients"]) from None
        return value

    @field_validator("admins")
    @classmethod
    def _check_admins(cls, value: list[int]) -> list[int]:
        if any(user_id <= 0 for user_id in value):
            raise ValueError(_PROBLEMS["admins"])
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr) -> SecretStr:
        try:
            decode_secret_key(value.get_secret_value())
        except InvalidKey:
            raise ValueError(_PROBLEMS["secret_key"]) from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _check_default_locale(cls, value: str) -> str:
        if value not in SHIPPED_LOCALES:
            raise ValueError(_PROBLEMS["default_locale"])
        return value

    @field_validator("coordinator_locale")
    @classmethod
    def _check_coordinator_locale(cls, value: str | None) -> str | None:
        if value is not None and value not in SHIPPED_LOCALES:
            raise ValueError(_PROBLEMS["coordinator_locale"])
        return value

    @field_validator("coordinator_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(_PROBLEMS["coordinator_timezone"]) from None
        return value

    @property
    def ticket_locale(self) -> str:
        """The language of the coordinators' tickets."""
        return self.coordinator_locale or self.default_locale

    @field_validator("http_client", mode="before")
    @classmethod
    def _lower_http_client(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    def secret_key_bytes(self) -> bytes:
        """Return the decoded secret key (at least ``KEY_BYTES`` bytes)."""
        return decode_secret_key(self.secret_key.get_secret_value())


def _describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into ``BEACON_X: problem`` without quoting the input."""
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else ""
    if field not in _PROBLEMS:
        return f"{ENV_PREFIX}*: invalid configuration"
    problem = "is required" if error.get("type") == "missing" else _PROBLEMS[field]
    return f"{env_name(field)}: {problem}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and ``.env``; keyword arguments win over both.

    Pass ``_env_file=None`` to ignore ``.env`` (tests do). Raises ``ConfigError`` with a one-line
    message naming each bad variable, e.g. ``BEACON_SECRET_KEY: must be base64 of ...``.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_describe(error) for error in exc.errors(include_input=False)))
        # "from None": the ValidationError's own text quotes the input, which may be a secret.
        raise ConfigError("; ".join(problems)) from None
    except SettingsError:
        raise ConfigError(f"{ENV_PREFIX}*: cannot read the environment or .env file") from None
