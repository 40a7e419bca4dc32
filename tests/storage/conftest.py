"""Storage fixtures: a migrated database file in tmp_path, a keyring, a clock, and the stores over them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiosqlite
import pytest

from bot.crypto import Keyring
from storage.cases import CaseStore
from storage.db import open_database
from storage.migrations import migrate
from storage.workflow import StaffStore, WorkflowStore
from tests.storage.factories import ROOT, Clock


@pytest.fixture
async def conn(tmp_path) -> AsyncIterator[aiosqlite.Connection]:
    """A migrated database file in tmp_path, closed after the test."""
    connection = await open_database(tmp_path / "beacon.db")
    await migrate(connection)
    yield connection
    await connection.close()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(ROOT)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(conn, keyring, clock) -> CaseStore:
    return CaseStore(conn, keyring, clock=clock)


@pytest.fixture
def staff(conn, clock) -> StaffStore:
    return StaffStore(conn, clock=clock)


@pytest.fixture
def workflow(conn, keyring, clock) -> WorkflowStore:
    return WorkflowStore(conn, keyring, clock=clock)
