"""The export reader on a real migrated SQLite file: read-only, one snapshot, batches in creation order,
every filter, active cases only below the full level, decrypted free text without the way back to the
reporter; and the audit entry of an export."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.domain.export import ExportCase, ExportFilters, parse_filters, quasi_key
from bot.domain.models import CaseStatus, Condition, Place, Possession, Priority, Report
from bot.domain.workflow import ClosingReason
from storage.audit import audit_entries, verify_audit
from storage.db import DatabaseOpenError, StorageError
from storage.export import ExportReader, record_export
from tests.storage.factories import NOW, USER_ID, make_case, rich_report

COORDINATOR = 222
CHAT_ID = 5_550_001_234  # planted: the chat id kept to write back to the reporter


async def add(store, keyring, *, report: Report | None = None, **kwargs) -> str:
    new, _ = make_case(keyring, report=report or Report(language="en"), **kwargs)
    await store.create_case(new)
    return new.case_id


async def every_case(
    reader: ExportReader, filters: ExportFilters | None = None, *, only_active: bool = False, **kwargs
) -> list[ExportCase]:
    cases: list[ExportCase] = []
    async for batch in reader.cases(filters or ExportFilters(), only_active=only_active, **kwargs):
        cases.extend(batch)
    return cases


async def ids(reader: ExportReader, filters: ExportFilters, *, only_active: bool = False) -> set[str]:
    """The ids a filter selects; ``count`` must agree with what ``cases`` yields."""
    found = [case.case_id for case in await every_case(reader, filters, only_active=only_active)]
    assert len(found) == len(set(found))
    assert await reader.count(filters, only_active=only_active) == len(found)
    return set(found)


@pytest.fixture
def db_path(conn, tmp_path) -> Path:
    """The migrated file behind the ``conn`` fixture."""
    return tmp_path / "beacon.db"


# --- read-only, snapshot, batches ---------------------------------------------------------------------


async def test_the_reader_cannot_write(db_path, store, keyring):
    """Its connection is opened read-only: a write through it fails and changes nothing."""
    case_id = await add(store, keyring)
    async with await ExportReader.open(db_path, keyring) as reader:
        # The reader offers no way to write; its private connection is tried directly.
        with pytest.raises(aiosqlite.OperationalError, match="readonly"):
            await reader._conn.execute("UPDATE cases SET status = 'closed' WHERE id = ?", (case_id,))
        with pytest.raises(aiosqlite.OperationalError, match="readonly"):
            await reader._conn.execute("DELETE FROM cases")
    async with await ExportReader.open(db_path, keyring) as reader:
        assert [case.status for case in await every_case(reader)] == [CaseStatus.NEW]


async def test_a_missing_database_is_not_created(tmp_path, keyring):
    missing = tmp_path / "nowhere" / "beacon.db"
    with pytest.raises(DatabaseOpenError, match="no database"):
        await ExportReader.open(missing, keyring)
    assert not missing.exists()
    assert not missing.parent.exists()


async def test_an_unmigrated_database_is_a_storage_error(tmp_path, keyring):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(DatabaseOpenError, match="cannot read database"):
        await ExportReader.open(empty, keyring)


async def test_the_reader_sees_one_snapshot(db_path, store, keyring, workflow, clock):
    """Cases added or changed after the reader opened are not seen, in counts or in batches."""
    first = await add(store, keyring, created_at=NOW)
    async with await ExportReader.open(db_path, keyring) as reader:
        clock.now = NOW + timedelta(hours=1)
        later = await add(store, keyring, created_at=clock.now)
        await workflow.claim(first, COORDINATOR)
        assert await reader.count(ExportFilters(), only_active=True) == 1
        cases = await every_case(reader, only_active=True)
        assert [case.case_id for case in cases] == [first]
        assert cases[0].status is CaseStatus.NEW
        assert await reader.quasi_identifier_counts(ExportFilters()) == {quasi_key(cases[0]): 1}
    async with await ExportReader.open(db_path, keyring) as reader:
        assert {case.case_id for case in await every_case(reader)} == {first, later}


async def test_small_batches_give_every_case_once_oldest_first(db_path, store, keyring):
    """Keyset batches of two: every case once, ordered by creation time then id (ties included)."""
    made: list[tuple[datetime, str]] = []
    for number, minutes in enumerate([30, 0, 30, 10, 30, 0, 45]):
        created = NOW + timedelta(minutes=minutes)
        case_id = f"CASE-{(7 - number) * 1111}"
        await add(store, keyring, case_id=case_id, created_at=created)
        made.append((created, case_id))
    async with await ExportReader.open(db_path, keyring) as reader:
        batches = [batch async for batch in reader.cases(ExportFilters(), only_active=True, batch_size=2)]
    assert [len(batch) for batch in batches] == [2, 2, 2, 1]
    assert [(case.created_at, case.case_id) for batch in batches for case in batch] == sorted(made)


# --- filters ------------------------------------------------------------------------------------------


async def test_since_and_until_are_inclusive_utc_days(db_path, store, keyring):
    times = {
        "before": datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
        "first": datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        "last": datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
        "after": datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
    }
    made = {name: await add(store, keyring, created_at=moment) for name, moment in times.items()}
    async with await ExportReader.open(db_path, keyring) as reader:
        one_day = parse_filters(since="2026-03-01", until="2026-03-01")
        assert await ids(reader, one_day) == {made["first"], made["last"]}
        assert await ids(reader, parse_filters(since="2026-03-01")) == {
            made["first"],
            made["last"],
            made["after"],
        }
        assert await ids(reader, parse_filters(until="2026-02-28")) == {made["before"]}


async def test_status_filter(db_path, store, keyring, workflow):
    made = {status: await add(store, keyring) for status in CaseStatus}
    await workflow.claim(made[CaseStatus.ACKNOWLEDGED], COORDINATOR)
    await workflow.set_status(made[CaseStatus.IN_CONTACT], CaseStatus.IN_CONTACT, COORDINATOR)
    await workflow.set_status(made[CaseStatus.REFERRED], CaseStatus.REFERRED, COORDINATOR)
    await workflow.set_status(made[CaseStatus.CLOSED], CaseStatus.CLOSED, COORDINATOR, ClosingReason.RESCUED)
    async with await ExportReader.open(db_path, keyring) as reader:
        for status, case_id in made.items():
            assert await ids(reader, parse_filters(status=[status.value])) == {case_id}
        opened = {made[CaseStatus.NEW], made[CaseStatus.ACKNOWLEDGED], made[CaseStatus.IN_CONTACT]}
        assert await ids(reader, parse_filters(status=["open"])) == opened
        assert await ids(reader, parse_filters(status=["referred,closed"])) == {
            made[CaseStatus.REFERRED],
            made[CaseStatus.CLOSED],
        }
        closed = [case for case in await every_case(reader) if case.case_id == made[CaseStatus.CLOSED]]
        assert closed[0].closing_reason == ClosingReason.RESCUED.value


async def test_priority_filter(db_path, store, keyring):
    made = {priority: await add(store, keyring, priority=priority) for priority in Priority}
    async with await ExportReader.open(db_path, keyring) as reader:
        assert await ids(reader, parse_filters(priority=["P1"])) == {made[Priority.P1]}
        assert await ids(reader, parse_filters(priority=["2,P4"])) == {made[Priority.P2], made[Priority.P4]}


async def test_country_and_area_filters(db_path, store, keyring):
    def at(country: str | None, area: str | None) -> Report:
        return Report(place=Place(country=country, area_id=area))

    sihanouk = await add(store, keyring, report=at("KH", "kh-preah-sihanouk"))
    poipet = await add(store, keyring, report=at("KH", "kh-poipet"))
    mae_sot = await add(store, keyring, report=at("TH", "th-mae-sot"))
    nowhere = await add(store, keyring, report=at(None, None))
    async with await ExportReader.open(db_path, keyring) as reader:
        assert await ids(reader, parse_filters(country=["kh"])) == {sihanouk, poipet}
        assert await ids(reader, parse_filters(country=["TH,MM"])) == {mae_sot}
        assert await ids(reader, parse_filters(area=["kh-poipet"])) == {poipet}
        assert await ids(reader, parse_filters(area=["kh-poipet", "th-mae-sot"])) == {poipet, mae_sot}
        assert await ids(reader, parse_filters(country=["KH"], area=["th-mae-sot"])) == set()
        assert await ids(reader, ExportFilters()) == {sihanouk, poipet, mae_sot, nowhere}


async def test_indicator_filters_by_htcds_code_and_condition(db_path, store, keyring):
    """WithholdsDocuments matches a taken passport, IllicitActivities forced scamming, a code or a
    condition the conditions that record it; several indicators select any of them."""
    passport = await add(store, keyring, report=Report(passport=Possession.TAKEN))
    kept = await add(store, keyring, report=Report(passport=Possession.KEPT))
    scamming = await add(store, keyring, report=Report(conditions=frozenset({Condition.FORCED_SCAMMING})))
    locked = await add(store, keyring, report=Report(conditions=frozenset({Condition.LOCKED_IN})))
    threats = await add(store, keyring, report=Report(conditions=frozenset({Condition.THREATS})))
    both = await add(
        store,
        keyring,
        report=Report(passport=Possession.TAKEN, conditions=frozenset({Condition.LOCKED_IN})),
    )
    async with await ExportReader.open(db_path, keyring) as reader:
        assert await ids(reader, parse_filters(indicator=["WithholdsDocuments"])) == {passport, both}
        assert await ids(reader, parse_filters(indicator=["IllicitActivities"])) == {scamming}
        assert await ids(reader, parse_filters(indicator=["RestrictsMovement"])) == {locked, both}
        assert await ids(reader, parse_filters(indicator=["locked_in"])) == {locked, both}
        assert await ids(reader, parse_filters(indicator=["PsychologicalAbuse"])) == {threats}
        assert await ids(reader, parse_filters(indicator=["withholdsdocuments,threats"])) == {
            passport,
            both,
            threats,
        }
        assert await ids(reader, parse_filters(indicator=["DebtBondage"])) == set()
        assert kept not in await ids(reader, ExportFilters(documents=True))
        matched = {case.case_id: case for case in await every_case(reader)}
        assert matched[passport].htcds_methods() == ("WithholdsDocuments",)
        assert matched[scamming].forced_criminality


async def test_filters_combine_with_and(db_path, store, keyring):
    wanted = await add(
        store,
        keyring,
        report=Report(
            place=Place(country="KH", area_id="kh-poipet"), conditions=frozenset({Condition.LOCKED_IN})
        ),
        priority=Priority.P1,
        created_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    await add(store, keyring, report=Report(place=Place(country="KH")), priority=Priority.P1)
    await add(
        store,
        keyring,
        report=Report(conditions=frozenset({Condition.LOCKED_IN})),
        priority=Priority.P3,
        created_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    filters = parse_filters(
        since="2026-03-02", country=["KH"], priority=["P1"], indicator=["locked_in"], status=["new"]
    )
    async with await ExportReader.open(db_path, keyring) as reader:
        assert await ids(reader, filters) == {wanted}


async def test_withdrawn_and_quarantined_cases_only_without_only_active(db_path, store, keyring):
    active = await add(store, keyring)
    withdrawn = await add(store, keyring)
    await store.withdraw(withdrawn, update_id=None)
    quarantined = await add(store, keyring, quarantined=True)
    async with await ExportReader.open(db_path, keyring) as reader:
        assert await ids(reader, ExportFilters(), only_active=True) == {active}
        assert await ids(reader, ExportFilters(), only_active=False) == {active, withdrawn, quarantined}
        assert sum((await reader.quasi_identifier_counts(ExportFilters())).values()) == 1
        cases = {case.case_id: case for case in await every_case(reader)}
    assert cases[withdrawn].withdrawn_at is not None
    assert cases[quarantined].quarantined
    assert cases[active].withdrawn_at is None
    assert not cases[active].quarantined


async def test_quasi_identifier_counts_agree_with_the_cases(db_path, store, keyring):
    """The counting pass and the writing pass compute the same quasi-identifiers for each case."""
    await add(store, keyring, report=rich_report())
    await add(store, keyring, report=rich_report(), created_at=datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    await add(store, keyring, report=Report(nationalities=("VN",), place=Place(country="MM")))
    await add(store, keyring, report=Report(nationalities=("VN", "CN")))
    async with await ExportReader.open(db_path, keyring) as reader:
        counts = await reader.quasi_identifier_counts(ExportFilters())
        cases = await every_case(reader, only_active=True)
    expected: dict = {}
    for case in cases:
        expected[quasi_key(case)] = expected.get(quasi_key(case), 0) + 1
    assert counts == expected
    assert sum(counts.values()) == 4


# --- the full level: decrypted free text, never the reporter -----------------------------------------


async def test_decrypting_gives_details_additions_and_notes(db_path, store, keyring, workflow, clock):
    case_id = await add(store, keyring, report=rich_report("MARK"), chat_id=CHAT_ID)
    clock.now = NOW + timedelta(minutes=5)
    await store.add_information(case_id, "MARK-addition one", (), update_id=None)
    clock.now = NOW + timedelta(minutes=6)
    await store.add_information(case_id, "MARK-addition two", (), update_id=None)
    await workflow.add_note(case_id, "MARK-note from the team", COORDINATOR)
    async with await ExportReader.open(db_path, keyring) as reader:
        [case] = await every_case(reader, decrypt=True)
        [plain] = await every_case(reader)
    secrets = case.secrets
    assert secrets is not None
    report = rich_report("MARK")
    assert secrets.details == report.details
    assert secrets.place_details == report.place.details
    assert secrets.victim_name == "MARK-name Nguyễn Văn An"
    assert secrets.victim_passport_number == "MARKPP12345"
    assert secrets.victim_handle == "@MARK_handle"
    assert secrets.victim_last_contact == "2026-02-20"
    assert (secrets.latitude, secrets.longitude) == (10.627543, 103.522016)
    assert secrets.additions == ("MARK-addition one", "MARK-addition two")
    assert secrets.notes == ("MARK-note from the team",)
    assert case.additions_count == 2
    assert plain.secrets is None


async def test_decrypting_needs_the_keyring(db_path, store, keyring):
    await add(store, keyring)
    async with await ExportReader.open(db_path, None) as reader:
        with pytest.raises(StorageError, match="keyring"):
            await every_case(reader, decrypt=True)
        assert len(await every_case(reader)) == 1


async def test_the_reporter_chat_id_and_pseudonym_never_reach_an_export_case(
    db_path, store, keyring, workflow
):
    """The chat id kept to write back, the reporter's pseudonym and the receipt are in no field."""
    new, receipt = make_case(keyring, report=rich_report("MARK"), chat_id=CHAT_ID)
    await store.create_case(new)
    await workflow.claim(new.case_id, COORDINATOR)
    assert await store.contact_chat_id(new.case_id) == CHAT_ID  # it is stored...
    async with await ExportReader.open(db_path, keyring) as reader:
        [case] = await every_case(reader, decrypt=True)
    text = repr(dataclasses.astuple(case))
    assert "MARK-details" in text  # ...the free text came through, the way back did not
    for secret in (str(CHAT_ID), str(USER_ID), keyring.pseudonym(USER_ID), receipt):
        assert secret not in text


# --- the audit trail ---------------------------------------------------------------------------------


async def test_record_export_appends_a_chained_audit_entry(conn):
    before = await verify_audit(conn)
    await record_export(
        conn,
        actor_id=4242,
        details={"via": "telegram", "level": "partner", "rows": 17, "filter_status": "new"},
        at=NOW,
    )
    await record_export(conn, actor_id=None, details={"via": "command_line", "level": "public", "rows": 0})
    latest, previous = await audit_entries(conn, limit=2)
    assert previous.action == "export"
    assert previous.actor_id == 4242
    assert previous.at == NOW
    assert previous.case_id is None
    assert previous.details == {"via": "telegram", "level": "partner", "rows": 17, "filter_status": "new"}
    assert (latest.action, latest.actor_id, latest.details["via"]) == ("export", None, "command_line")
    check = await verify_audit(conn)
    assert check.intact
    assert check.entries == before.entries + 2
