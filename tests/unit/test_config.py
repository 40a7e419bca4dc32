"""Settings: reading BEACON_* variables, normalising them, and reporting bad ones in one safe line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, Settings, load_settings
from tests.unit.conftest import VALID_KEY, VALID_TOKEN

REPO = Path(__file__).resolve().parents[2]


def test_valid_environment_gives_settings_with_defaults(valid_env, tmp_path):
    """Only the two required variables are needed; everything else has a documented default."""
    settings = load_settings()
    assert settings.bot_token.get_secret_value() == VALID_TOKEN
    assert settings.api_url == "https://api.telegram.org"
    assert settings.database == tmp_path / "db" / "beacon.db"
    assert settings.coordinator_chat_id is None
    assert settings.admins == []
    assert settings.default_locale == "en"
    assert settings.log_level == "INFO"
    assert len(settings.secret_key_bytes()) == 32
    # Different reporters' updates at once, on aiohttp (README, "Intake under load").
    assert settings.concurrent_updates == 16
    assert settings.http_client == "aiohttp"


def test_every_variable_is_read_from_the_environment(valid_env):
    """Each field is set by its BEACON_ variable."""
    valid_env.setenv("BEACON_API_URL", "http://127.0.0.1:8081")
    valid_env.setenv("BEACON_DATABASE", "elsewhere/b.db")
    valid_env.setenv("BEACON_COORDINATOR_CHAT_ID", "-1001234567890")
    valid_env.setenv("BEACON_ADMINS", "7,8")
    valid_env.setenv("BEACON_DEFAULT_LOCALE", "zh_Hans")
    valid_env.setenv("BEACON_LOG_LEVEL", "warning")
    settings = load_settings()
    assert settings.api_url == "http://127.0.0.1:8081"
    assert settings.database == Path("elsewhere/b.db")
    assert settings.coordinator_chat_id == -1001234567890
    assert settings.admins == [7, 8]
    assert settings.default_locale == "zh_Hans"
    assert settings.log_level == "WARNING"


def test_settings_are_read_from_a_dotenv_file_in_the_working_folder(isolated_env):
    """A .env file in the working folder configures Beacon like the environment does."""
    (isolated_env / ".env").write_text(
        f"BEACON_BOT_TOKEN={VALID_TOKEN}\nBEACON_SECRET_KEY={VALID_KEY}\nBEACON_ADMINS=5\n", encoding="utf-8"
    )
    settings = load_settings()
    assert settings.bot_token.get_secret_value() == VALID_TOKEN
    assert settings.admins == [5]


def test_environment_wins_over_dotenv_and_overrides_win_over_both(isolated_env, monkeypatch):
    """Precedence is: keyword overrides, then the environment, then .env."""
    (isolated_env / ".env").write_text(
        f"BEACON_BOT_TOKEN={VALID_TOKEN}\nBEACON_SECRET_KEY={VALID_KEY}\nBEACON_LOG_LEVEL=ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("BEACON_LOG_LEVEL", "DEBUG")
    assert load_settings().log_level == "DEBUG"
    assert load_settings(log_level="WARNING").log_level == "WARNING"


def test_empty_variables_mean_not_set(valid_env):
    """An empty value, as copied from .env.example, falls back to the default."""
    for name in ("BEACON_API_URL", "BEACON_ADMINS", "BEACON_COORDINATOR_CHAT_ID", "BEACON_LOG_LEVEL"):
        valid_env.setenv(name, "")
    settings = load_settings()
    assert settings.api_url == "https://api.telegram.org"
    assert settings.admins == []
    assert settings.coordinator_chat_id is None
    assert settings.log_level == "INFO"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,2, 3", [1, 2, 3]),
        (" 42 ", [42]),
        ("1,2,", [1, 2]),
        ("", []),
    ],
)
def test_admins_are_parsed_from_a_comma_separated_list(valid_env, raw, expected):
    """BEACON_ADMINS is a plain comma-separated list of user ids, not JSON."""
    valid_env.setenv("BEACON_ADMINS", raw)
    assert load_settings().admins == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://api.telegram.org/", "https://api.telegram.org"),
        ("http://127.0.0.1:8081//", "http://127.0.0.1:8081"),
        ("  https://bot-api.example.org/prefix/ ", "https://bot-api.example.org/prefix"),
        ("HTTP://localhost:8081", "HTTP://localhost:8081"),
    ],
)
def test_api_url_loses_its_trailing_slash(valid_env, raw, expected):
    """The API URL is stored without a trailing slash, ready for "/bot<token>" to be appended."""
    valid_env.setenv("BEACON_API_URL", raw)
    assert load_settings().api_url == expected


@pytest.mark.parametrize(
    "key",
    [
        base64.b64encode(bytes(range(32))).decode(),
        base64.urlsafe_b64encode(bytes(range(200, 232))).decode(),
        base64.urlsafe_b64encode(bytes(range(200, 232))).decode().rstrip("="),
        base64.b64encode(bytes(64)).decode(),
    ],
)
def test_secret_key_accepts_standard_and_urlsafe_base64(valid_env, key):
    """Standard or URL-safe base64, padded or not, of 32 bytes or more is a valid key."""
    valid_env.setenv("BEACON_SECRET_KEY", key)
    assert load_settings().secret_key_bytes() == base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def test_log_level_is_case_insensitive(valid_env):
    """BEACON_LOG_LEVEL=debug means DEBUG."""
    valid_env.setenv("BEACON_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_repr_of_settings_hides_the_secrets(valid_env):
    """Printing the settings (e.g. in a debugger or log) never shows the token or the key."""
    text = repr(load_settings()) + str(load_settings())
    assert VALID_TOKEN not in text
    assert VALID_KEY not in text


@pytest.mark.parametrize("missing", ["BEACON_BOT_TOKEN", "BEACON_SECRET_KEY"])
def test_missing_required_variable_is_named(valid_env, missing):
    """A required variable that is unset is reported by name as required."""
    valid_env.delenv(missing)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"{missing}: is required"


# (variable, bad value): each value is unique so that the test can prove it is never echoed.
INVALID = [
    ("BEACON_BOT_TOKEN", "not-a-token-s3cr3t-value-1"),
    ("BEACON_BOT_TOKEN", "123456:has spaces s3cr3t"),
    ("BEACON_SECRET_KEY", "s3cr3t-but-not-base64!!"),
    ("BEACON_SECRET_KEY", base64.b64encode(b"s3cr3t-only-31-bytes-long-xxxxx").decode()),
    ("BEACON_API_URL", "ftp://api.example.org"),
    ("BEACON_API_URL", "bot-api.example.org"),
    ("BEACON_API_URL", "https://api.example.org/?token=s3cr3t"),
    ("BEACON_API_URL", "https://api.example.org/{token}"),
    ("BEACON_COORDINATOR_CHAT_ID", "my-group-s3cr3t"),
    ("BEACON_ADMINS", "1,s3cr3t"),
    ("BEACON_ADMINS", "[1, 2]"),
    ("BEACON_ADMINS", "-5"),
    ("BEACON_DEFAULT_LOCALE", "fr-s3cr3t"),
    ("BEACON_LOG_LEVEL", "TRACE-s3cr3t"),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_variable_is_named_in_one_line_without_its_value(valid_env, name, value):
    """A bad value gives one line naming the variable, and the value itself is never repeated."""
    valid_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}: must ")
    assert "\n" not in message
    assert value not in message
    assert "s3cr3t" not in message
    # The pydantic error (whose text quotes the input) must not ride along in a traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_several_problems_are_reported_together_on_one_line(isolated_env):
    """Every bad variable is named at once, so fixing the configuration takes one round."""
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, log_level="LOUD")
    assert str(caught.value) == (
        "BEACON_BOT_TOKEN: is required; BEACON_SECRET_KEY: is required; "
        "BEACON_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"
    )


def test_settings_cannot_be_changed_after_loading(valid_env):
    """Settings are read once and passed down unchanged."""
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]
    assert isinstance(settings, Settings)


@pytest.mark.parametrize("command", ["run", "migrate"])
def test_cli_prints_one_line_and_exits_2_on_bad_configuration(valid_env, capsys, command):
    """`beacon run` and `beacon migrate` turn a bad variable into one stderr line and exit status 2."""
    valid_env.setenv("BEACON_SECRET_KEY", "s3cr3t-short")
    assert main([command]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "beacon: configuration error: BEACON_SECRET_KEY: "
        "must be base64 of at least 32 random bytes (create one with: beacon keygen)\n"
    )


@pytest.mark.slow
def test_beacon_run_process_fails_cleanly_without_a_traceback(tmp_path):
    """The real `beacon run` process exits 2 with one line, no traceback and no secret."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_")}
    env["BEACON_BOT_TOKEN"] = "123:s3cr3t-token"
    env["BEACON_SECRET_KEY"] = "s3cr3t-short"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("beacon: configuration error: BEACON_SECRET_KEY: ")
    assert "Traceback" not in result.stderr
    assert "s3cr3t" not in result.stderr
