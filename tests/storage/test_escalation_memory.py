"""Escalation remembers its re-alerts in the database: a restart neither repeats them early nor loses them."""

from __future__ import annotations

from datetime import timedelta

from bot.crypto import Keyring
from bot.domain.models import CaseStatus, Priority
from bot.services.escalation import MEMORY_PREFIX, EscalationService
from storage.cases import CaseStore
from storage.coordination import CoordinationStore
from storage.db import open_database
from tests.storage.factories import Clock
from tests.unit.test_escalation import T0, Cases, Roster, Row
from tests.unit.test_escalation import Clock as Now

LIMIT = timedelta(minutes=10)


def cases_waiting(*rows: Row) -> Cases:
    cases = Cases()
    cases.rows.extend(rows)
    return cases


def roster() -> Roster:
    return Roster([(7, "Dara")])


async def test_a_restart_does_not_re_alert_before_the_interval(
    tmp_path, conn, store: CaseStore, keyring: Keyring, clock: Clock
):
    """Escalated at T0, the bot restarts at T0+3 min: the case is due again at T0+10 min, not at once."""
    waiting = cases_waiting(Row("AAAA-AAAA", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=30)))
    now = Now()
    first = EscalationService(
        waiting, roster(), LIMIT, memory=CoordinationStore(conn, store), clock=now.__call__
    )
    assert [e.case_id for e in await first.due()] == ["AAAA-AAAA"]
    await conn.close()

    reopened = await open_database(tmp_path / "beacon.db")
    try:
        memory = CoordinationStore(reopened, CaseStore(reopened, keyring, clock=clock))
        again = EscalationService(waiting, roster(), LIMIT, memory=memory, clock=now.__call__)
        now.now = T0 + timedelta(minutes=3)
        assert await again.due() == []
        now.now = T0 + timedelta(minutes=10)
        assert [e.case_id for e in await again.due()] == ["AAAA-AAAA"]
        assert await memory.get_value(MEMORY_PREFIX + "AAAA-AAAA") == now.now.isoformat()
    finally:
        await reopened.close()


async def test_an_acknowledged_case_is_forgotten_in_the_database(conn, store: CaseStore):
    """Once nobody waits for it any more, its re-alert time is deleted (nothing accumulates)."""
    waiting = cases_waiting(Row("BBBB-BBBB", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=30)))
    memory = CoordinationStore(conn, store)
    now = Now()
    service = EscalationService(waiting, roster(), LIMIT, memory=memory, clock=now.__call__)
    assert len(await service.due()) == 1
    assert await memory.values_with_prefix(MEMORY_PREFIX) != {}
    waiting.rows = [Row("BBBB-BBBB", Priority.P1, CaseStatus.ACKNOWLEDGED, T0 - timedelta(minutes=30))]
    now.now += timedelta(minutes=1)
    assert await service.due() == []
    assert await memory.values_with_prefix(MEMORY_PREFIX) == {}


async def test_an_unreadable_memory_errs_on_the_side_of_the_person(conn, store: CaseStore):
    """A damaged entry counts as never re-alerted: the waiting P1 is re-alerted rather than skipped."""
    memory = CoordinationStore(conn, store)
    await memory.set_value(MEMORY_PREFIX + "CCCC-CCCC", "not a time")
    waiting = cases_waiting(Row("CCCC-CCCC", Priority.P1, CaseStatus.NEW, T0 - timedelta(minutes=30)))
    service = EscalationService(waiting, roster(), LIMIT, memory=memory, clock=Now().__call__)
    assert [e.case_id for e in await service.due()] == ["CCCC-CCCC"]
