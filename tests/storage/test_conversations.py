"""storage.conversations: encrypted, JSON-only conversation states and user data for PTB persistence."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiosqlite
import pytest

from bot.crypto import DecryptionError, Keyring
from storage.conversations import ConversationStore, UnsupportedValue
from storage.db import transaction
from tests.storage.factories import NOW, OTHER_ROOT, ROOT


@pytest.fixture
def conversations(conn, keyring) -> ConversationStore:
    return ConversationStore(conn, keyring)


async def test_conversation_states_round_trip_with_tuple_keys(conversations):
    """(chat id, user id) and string keys come back as the same tuples, with their states."""
    await conversations.save_conversation("intake", (7_123_456_789, 7_123_456_789), 3, NOW)
    await conversations.save_conversation("intake", (-100_123, 42), {"step": "place", "n": [1, 2]}, NOW)
    await conversations.save_conversation("intake", ("inline", 5), "WAITING", NOW)
    await conversations.save_conversation("other", (1,), 1, NOW)
    assert await conversations.load_conversations("intake") == {
        (7_123_456_789, 7_123_456_789): 3,
        (-100_123, 42): {"step": "place", "n": [1, 2]},
        ("inline", 5): "WAITING",
    }
    assert await conversations.load_conversations("other") == {(1,): 1}
    assert await conversations.load_conversations("none") == {}


async def test_saving_a_new_state_replaces_the_old_and_none_deletes_it(conversations, conn):
    """One row per key: updates overwrite; a None state ends the conversation."""
    await conversations.save_conversation("intake", (1, 1), 1, NOW)
    await conversations.save_conversation("intake", (1, 1), 2, NOW)
    assert await conversations.load_conversations("intake") == {(1, 1): 2}
    await conversations.save_conversation("intake", (1, 1), None, NOW)
    await conversations.save_conversation("intake", (9, 9), None, NOW)
    assert await conversations.load_conversations("intake") == {}
    assert list(await conn.execute_fetchall("SELECT COUNT(*) FROM conversations")) == [(0,)]


async def test_the_same_key_in_two_conversations_is_two_rows(conversations):
    """The lookup covers the conversation name as well as the key."""
    await conversations.save_conversation("a", (1, 2), 1, NOW)
    await conversations.save_conversation("b", (1, 2), 2, NOW)
    assert await conversations.load_conversations("a") == {(1, 2): 1}
    assert await conversations.load_conversations("b") == {(1, 2): 2}


async def test_idle_conversations_are_those_untouched_since_the_cut_off(conversations):
    """Timeouts find conversations last saved before the given time, oldest first."""
    await conversations.save_conversation("intake", (2, 2), 1, NOW + timedelta(minutes=10))
    await conversations.save_conversation("intake", (1, 1), 1, NOW)
    await conversations.save_conversation("intake", (3, 3), 1, NOW + timedelta(hours=2))
    assert await conversations.idle_conversations("intake", NOW + timedelta(hours=1)) == [(1, 1), (2, 2)]
    assert await conversations.idle_conversations("other", NOW + timedelta(days=1)) == []


async def test_values_that_are_not_json_are_refused_without_writing(conversations):
    """No pickle: a set, an object or a float key part raises UnsupportedValue and stores nothing."""
    with pytest.raises(UnsupportedValue):
        await conversations.save_conversation("intake", (1, 1), {1, 2}, NOW)
    with pytest.raises(UnsupportedValue):
        await conversations.save_conversation("intake", (1.5, 1), 1, NOW)
    with pytest.raises(UnsupportedValue):
        await conversations.save_user_data(1, {"when": NOW}, NOW)
    assert await conversations.load_conversations("intake") == {}
    assert await conversations.load_user_data() == {}


async def test_user_data_round_trips_and_can_be_dropped(conversations):
    """User data is stored per user id as JSON; drop_user_data removes it."""
    draft = {"step": 4, "draft": {"details": "tầng 5", "conditions": ["violence", "locked_in"]}, "lang": "vi"}
    await conversations.save_user_data(7_123_456_789, draft, NOW)
    await conversations.save_user_data(42, {}, NOW)
    await conversations.save_user_data(42, {"step": 1}, NOW)
    assert await conversations.load_user_data() == {7_123_456_789: draft, 42: {"step": 1}}
    await conversations.drop_user_data(42)
    await conversations.drop_user_data(43)
    assert await conversations.load_user_data() == {7_123_456_789: draft}


async def test_idle_users_are_those_untouched_since_the_cut_off(conversations):
    """Timeouts can find reporters whose draft has not changed for a while."""
    await conversations.save_user_data(1, {}, NOW)
    await conversations.save_user_data(2, {}, NOW + timedelta(hours=2))
    assert await conversations.idle_users(NOW + timedelta(hours=1)) == [1]


async def test_rows_written_before_a_key_rotation_are_read_and_replaced(conn):
    """After rotation, old rows still load; saving again replaces them rather than adding a second row."""
    old = ConversationStore(conn, Keyring(ROOT))
    await old.save_conversation("intake", (5, 5), 1, NOW)
    await old.save_user_data(5, {"step": 1}, NOW)

    rotated = ConversationStore(conn, Keyring(OTHER_ROOT, previous=(ROOT,)))
    assert await rotated.load_conversations("intake") == {(5, 5): 1}
    assert await rotated.load_user_data() == {5: {"step": 1}}
    await rotated.save_conversation("intake", (5, 5), 2, NOW)
    await rotated.save_user_data(5, {"step": 2}, NOW)
    assert await rotated.load_conversations("intake") == {(5, 5): 2}
    assert await rotated.load_user_data() == {5: {"step": 2}}
    assert list(await conn.execute_fetchall("SELECT COUNT(*) FROM conversations")) == [(1,)]
    assert list(await conn.execute_fetchall("SELECT COUNT(*) FROM user_data")) == [(1,)]
    await rotated.drop_user_data(5)
    assert await rotated.load_user_data() == {}


async def test_rows_from_another_secret_fail_loudly(conn):
    """Loading with a keyring that lacks the writing secret raises instead of returning nothing."""
    await ConversationStore(conn, Keyring(ROOT)).save_user_data(5, {"step": 1}, NOW)
    with pytest.raises(DecryptionError):
        await ConversationStore(conn, Keyring(OTHER_ROOT)).load_user_data()


async def test_a_state_moved_to_another_key_fails_loudly(conversations, conn):
    """Swapping encrypted states between rows is detected: each is bound to its lookup."""
    await conversations.save_conversation("intake", (1, 1), "first", NOW)
    await conversations.save_conversation("intake", (2, 2), "second", NOW)
    await conn.execute("UPDATE conversations SET state = (SELECT state FROM conversations LIMIT 1)")
    with pytest.raises(DecryptionError):
        await conversations.load_conversations("intake")


async def _user_rows(conn) -> list[tuple[bytes, str]]:
    return [tuple(row) for row in await conn.execute_fetchall("SELECT data, updated_at FROM user_data")]


async def test_unchanged_user_data_is_not_written_again(conversations, conn):
    """A second save of the same data (a second flush, the periodic flush) leaves the row as it was;
    changed data is written, with its new time."""
    await conversations.save_user_data(5, {"step": "passport", "n": [1]}, NOW)
    first = await _user_rows(conn)
    await conversations.save_user_data(5, {"step": "passport", "n": [1]}, NOW + timedelta(minutes=5))
    assert await _user_rows(conn) == first
    await conversations.save_user_data(5, {"step": "phone", "n": [1]}, NOW + timedelta(minutes=6))
    (changed,) = await _user_rows(conn)
    assert changed != first[0]
    assert await conversations.idle_users(NOW + timedelta(minutes=6)) == []
    assert await conversations.load_user_data() == {5: {"step": "phone", "n": [1]}}


async def test_user_data_is_written_again_after_it_was_dropped(conversations, conn):
    """Dropping forgets what was written: the same data saved again is stored again."""
    await conversations.save_user_data(5, {"step": 1}, NOW)
    await conversations.drop_user_data(5)
    await conversations.save_user_data(5, {"step": 1}, NOW)
    assert await conversations.load_user_data() == {5: {"step": 1}}


async def test_a_failed_write_is_written_when_saved_again(conversations, conn):
    """A write that failed (here: the database refuses writes) is not remembered as written."""
    await conversations.save_user_data(5, {"step": 1}, NOW)
    await conn.execute("PRAGMA query_only = ON")
    with pytest.raises(aiosqlite.Error):
        await conversations.save_user_data(5, {"step": 2}, NOW)
    await conn.execute("PRAGMA query_only = OFF")
    await conversations.save_user_data(5, {"step": 2}, NOW)
    assert await conversations.load_user_data() == {5: {"step": 2}}


async def test_user_data_is_read_before_the_first_await(conversations):
    """The caller's dict is serialised when save is called: changing it while the write waits for the
    database does not change what is stored (no deep copy is needed)."""
    data = {"step": 1}
    pending = asyncio.ensure_future(conversations.save_user_data(5, data, NOW))
    await asyncio.sleep(0)
    data["step"] = 2
    await pending
    assert await conversations.load_user_data() == {5: {"step": 1}}


async def test_user_data_writes_take_turns_with_open_transactions(conversations, conn):
    """A single-statement save never joins (and is never rolled back with) another coroutine's
    transaction on the shared connection."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def failing_transaction() -> None:
        async with transaction(conn):
            await conn.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('probe', 'x', 't')")
            entered.set()
            await release.wait()
            raise RuntimeError("rolled back")

    other = asyncio.ensure_future(failing_transaction())
    await entered.wait()
    save = asyncio.ensure_future(conversations.save_user_data(5, {"step": 1}, NOW))
    await asyncio.sleep(0.05)
    assert not save.done()
    release.set()
    with pytest.raises(RuntimeError):
        await other
    await save
    assert await conversations.load_user_data() == {5: {"step": 1}}
    assert list(await conn.execute_fetchall("SELECT COUNT(*) FROM bot_state WHERE key = 'probe'")) == [(0,)]
