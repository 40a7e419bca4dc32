"""Unit-test fixtures: each test runs in an empty folder with no BEACON_* variables set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VALID_TOKEN = "123456:TEST-token_for_tests"
VALID_KEY = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="  # base64 of 32 fixed (not random) bytes


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Clear BEACON_* variables and work in tmp_path, so a developer's .env cannot leak in."""
    for name in list(os.environ):
        if name.startswith("BEACON_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def valid_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Set the two required variables (and a database in tmp_path) to valid values."""
    monkeypatch.setenv("BEACON_BOT_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("BEACON_SECRET_KEY", VALID_KEY)
    monkeypatch.setenv("BEACON_DATABASE", str(tmp_path / "db" / "beacon.db"))
    return monkeypatch
