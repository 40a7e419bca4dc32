"""storage.coordination: tickets, delivery bookkeeping of the outbox, dead letters and run-time values,
on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta

import aiosqlite
import pytest

from bot.crypto import Keyring
from bot.domain.models import Priority, Report
from bot.domain.records import OutboxKind
from storage.cases import CaseStore, OutboxItemNotFound
from storage.coordination import MAX_ERROR, CoordinationStore, Ticket
from storage.db import open_database
from storage.migrations import applied_migrations
from tests.storage.factories import NOW, Clock, make_case

CHAT = -1001234567890


@pytest.fixture
def coordination(conn: aiosqlite.Connection, store: CaseStore, clock: Clock) -> CoordinationStore:
    return CoordinationStore(conn, store, clock=clock)


async def commit(
    store: CaseStore, keyring: Keyring, case_id: str, priority: Priority = Priority.P3, user_id: int = 1
) -> int:
    """Commit a case; return the id of its NEW_CASE outbox row."""
    new, _ = make_case(keyring, case_id=case_id, report=Report(), priority=priority, user_id=user_id)
    await store.create_case(new)
    (item,) = [item for item in await store.pending_outbox(100) if item.case_id == case_id]
    return item.id


async def test_the_coordination_migration_is_applied(conn):
    """A migrated database records 0003_coordination and has the ticket and bot_state tables."""
    assert "0003_coordination" in await applied_migrations(conn)
    rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {"case_tickets", "bot_state"} <= {row[0] for row in rows}


# --- tickets -----------------------------------------------------------------------------------------


async def test_a_ticket_is_saved_read_back_and_forgotten(coordination, store, keyring):
    """A topic and then a card are recorded for a case; forgetting the ticket leaves none."""
    await commit(store, keyring, "TTTT-TTTT")
    assert await coordination.ticket("TTTT-TTTT") is None

    await coordination.save_topic("TTTT-TTTT", CHAT, 42)
    assert await coordination.ticket("TTTT-TTTT") == Ticket("TTTT-TTTT", CHAT, 42, None)

    await coordination.save_card("TTTT-TTTT", 77)
    assert await coordination.ticket("TTTT-TTTT") == Ticket("TTTT-TTTT", CHAT, 42, 77)

    await coordination.forget_ticket("TTTT-TTTT")
    assert await coordination.ticket("TTTT-TTTT") is None


async def test_a_new_topic_replaces_the_old_one_and_forgets_its_card(coordination, store, keyring):
    """Saving a topic again (the old one was deleted, or the group moved) drops the old card id."""
    await commit(store, keyring, "TTTT-TTTT")
    await coordination.save_topic("TTTT-TTTT", CHAT, 42)
    await coordination.save_card("TTTT-TTTT", 77)

    await coordination.save_topic("TTTT-TTTT", CHAT - 1, 99)

    assert await coordination.ticket("TTTT-TTTT") == Ticket("TTTT-TTTT", CHAT - 1, 99, None)


async def test_a_ticket_in_a_group_that_is_not_a_forum_has_no_thread(coordination, store, keyring):
    """In a plain group the ticket has no thread id, only the card."""
    await commit(store, keyring, "PPPP-PPPP")
    await coordination.save_topic("PPPP-PPPP", CHAT, None)
    await coordination.save_card("PPPP-PPPP", 5)
    assert await coordination.ticket("PPPP-PPPP") == Ticket("PPPP-PPPP", CHAT, None, 5)


async def test_tickets_of_different_cases_are_kept_apart(coordination, store, keyring):
    """Forgetting one case's ticket leaves another's as it was."""
    await commit(store, keyring, "AAAA-AAAA", user_id=1)
    await commit(store, keyring, "BBBB-BBBB", user_id=2)
    await coordination.save_topic("AAAA-AAAA", CHAT, 1)
    await coordination.save_topic("BBBB-BBBB", CHAT, 2)

    await coordination.forget_ticket("AAAA-AAAA")

    assert await coordination.ticket("AAAA-AAAA") is None
    assert await coordination.ticket("BBBB-BBBB") == Ticket("BBBB-BBBB", CHAT, 2, None)


# --- delivery bookkeeping ----------------------------------------------------------------------------


async def test_retry_later_counts_an_attempt_and_holds_the_item(coordination, store, keyring):
    """A failed attempt is counted, the item is held until the given time, and the error is kept short."""
    row = await commit(store, keyring, "RRRR-RRRR")
    later = NOW + timedelta(seconds=8)

    await coordination.retry_later(row, "TimedOut " + "x" * 1000, later)

    attempts, next_at, error = await coordination.last_attempt_error(row)
    assert attempts == 1
    assert next_at == later
    assert error is not None
    assert error.startswith("TimedOut")
    assert len(error) == MAX_ERROR
    assert await coordination.due(10, NOW) == []
    assert [item.id for item in await coordination.due(10, later)] == [row]
    assert (await coordination.due(10, later))[0].attempts == 1

    await coordination.retry_later(row, "Bad Gateway", later + timedelta(seconds=20))
    assert (await coordination.last_attempt_error(row))[0] == 2


async def test_postpone_holds_the_item_without_counting_an_attempt(coordination, store, keyring):
    """A rate-limited item waits until the given time; its attempt count and last error stay as they were."""
    row = await commit(store, keyring, "PPPP-PPPP")
    until = NOW + timedelta(seconds=30)

    await coordination.postpone(row, until)

    assert await coordination.last_attempt_error(row) == (0, until, None)
    assert await coordination.due(10, NOW) == []
    assert await coordination.backlog() == 1


async def test_a_dead_letter_is_listed_and_never_due_again(coordination, store, keyring, conn):
    """A dead-lettered item counts the attempt, keeps its error, leaves the queue and is listed."""
    dead = await commit(store, keyring, "DDDD-DDDD", user_id=1)
    alive = await commit(store, keyring, "LLLL-LLLL", user_id=2)

    await coordination.dead_letter(dead, "Forbidden: bot was kicked from the supergroup chat")

    assert await coordination.dead_letters() == [
        (dead, "DDDD-DDDD", "Forbidden: bot was kicked from the supergroup chat")
    ]
    assert (await coordination.last_attempt_error(dead))[0] == 1
    assert [item.id for item in await coordination.due(10, NOW + timedelta(days=365))] == [alive]
    assert await coordination.backlog() == 1
    dead_at = await conn.execute_fetchall("SELECT dead_at FROM outbox WHERE id = ?", (dead,))
    assert next(iter(dead_at))[0] is not None


async def test_no_dead_letters_when_everything_was_delivered(coordination, store, keyring):
    """Sent items are neither due, nor in the backlog, nor dead letters."""
    row = await commit(store, keyring, "SSSS-SSSS")
    await coordination.mark_sent(row)
    assert await coordination.dead_letters() == []
    assert await coordination.due(10, NOW) == []
    assert await coordination.backlog() == 0


@pytest.mark.parametrize("operation", ["retry_later", "postpone", "dead_letter", "mark_sent", "last_error"])
async def test_bookkeeping_of_an_unknown_outbox_item_raises(coordination, operation):
    """Every delivery update names a missing outbox row with OutboxItemNotFound."""
    calls = {
        "retry_later": lambda: coordination.retry_later(999, "x", NOW),
        "postpone": lambda: coordination.postpone(999, NOW),
        "dead_letter": lambda: coordination.dead_letter(999, "x"),
        "mark_sent": lambda: coordination.mark_sent(999),
        "last_error": lambda: coordination.last_attempt_error(999),
    }
    with pytest.raises(OutboxItemNotFound):
        await calls[operation]()


# --- due ---------------------------------------------------------------------------------------------


async def test_due_items_come_most_urgent_first_then_oldest(coordination, store, keyring, clock):
    """Due items are ordered by priority, then by the order they were committed; `limit` is honoured."""
    await commit(store, keyring, "P3OLD-AAA", Priority.P3, user_id=1)
    clock.now = NOW + timedelta(minutes=1)
    await commit(store, keyring, "P4OLD-AAA", Priority.P4, user_id=2)
    clock.now = NOW + timedelta(minutes=2)
    await commit(store, keyring, "P1NEW-AAA", Priority.P1, user_id=3)
    await commit(store, keyring, "P3NEW-AAA", Priority.P3, user_id=4)
    await store.add_information("P4OLD-AAA", "more", (), None)

    due = await coordination.due(10, clock.now)

    assert [(item.case_id, item.kind) for item in due] == [
        ("P1NEW-AAA", OutboxKind.NEW_CASE),
        ("P3OLD-AAA", OutboxKind.NEW_CASE),
        ("P3NEW-AAA", OutboxKind.NEW_CASE),
        ("P4OLD-AAA", OutboxKind.NEW_CASE),
        ("P4OLD-AAA", OutboxKind.CASE_UPDATE),
    ]
    assert [item.case_id for item in await coordination.due(2, clock.now)] == ["P1NEW-AAA", "P3OLD-AAA"]


async def test_due_skips_items_backing_off_until_their_time(coordination, store, keyring):
    """An item backing off is skipped while others are due, and comes back at its time, in its place."""
    p1 = await commit(store, keyring, "P1P1-P1P1", Priority.P1, user_id=1)
    p3 = await commit(store, keyring, "P3P3-P3P3", Priority.P3, user_id=2)
    await coordination.retry_later(p1, "Bad Gateway", NOW + timedelta(seconds=10))

    assert [item.id for item in await coordination.due(10, NOW)] == [p3]
    assert [item.id for item in await coordination.due(10, NOW + timedelta(seconds=10))] == [p1, p3]


# --- values ------------------------------------------------------------------------------------------


async def test_values_are_set_read_and_overwritten(coordination):
    """A run-time value is absent until set, then reads back, and a second set replaces it."""
    assert await coordination.get_value("coordinator_chat_id") is None
    await coordination.set_value("coordinator_chat_id", "-1001")
    assert await coordination.get_value("coordinator_chat_id") == "-1001"
    await coordination.set_value("coordinator_chat_id", "-1002")
    assert await coordination.get_value("coordinator_chat_id") == "-1002"
    assert await coordination.get_value("other") is None


async def test_values_survive_reopening_the_database(tmp_path, conn, store, clock):
    """A value written through one connection is read back after the database is closed and reopened."""
    await CoordinationStore(conn, store, clock=clock).set_value("coordinator_chat_id", "-1009")
    reopened = await open_database(tmp_path / "beacon.db")
    try:
        assert (
            await CoordinationStore(reopened, store, clock=clock).get_value("coordinator_chat_id") == "-1009"
        )
    finally:
        await reopened.close()
