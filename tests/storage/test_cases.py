"""storage.cases: committing a report in one transaction, reading it back, /add, /delete and the outbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import storage.cases
from bot.crypto import DecryptionError, Keyring, key_id_of
from bot.domain.models import CaseStatus, ContactPreference, Place, Priority, Reason, Report, Triage
from bot.domain.records import Media, MediaKind, OutboxKind
from storage.cases import (
    AlreadyProcessed,
    CaseNotFound,
    CaseStore,
    CaseWithdrawn,
    CaseWriteError,
    DuplicateCaseId,
    OutboxItemNotFound,
)
from tests.storage.factories import NOW, OTHER_ROOT, ROOT, USER_ID, make_case, photo, rich_report, row_counts

VOICE = Media(kind=MediaKind.VOICE, content=b"OggS voice note", mime_type="audio/ogg")


async def secret_fields(conn, case_id: str) -> set[str]:
    rows = await conn.execute_fetchall("SELECT field FROM case_secrets WHERE case_id = ?", (case_id,))
    return {row[0] for row in rows}


# --- create_case and get_case ------------------------------------------------------------------------


async def test_every_field_of_a_rich_report_comes_back_through_get_case(store, keyring):
    """A report with every answer, media and a link is stored and read back identical."""
    earlier, _ = make_case(keyring, case_id="AAAA-AAAA", report=Report(language="en"), user_id=1)
    await store.create_case(earlier)
    new, _ = make_case(keyring, case_id="K7MX-Q9PT", linked=("AAAA-AAAA",), media=(photo(), VOICE))
    await store.create_case(new)

    view = await store.get_case("K7MX-Q9PT")
    assert view is not None
    assert view.report == new.report
    assert view.case_id == "K7MX-Q9PT"
    assert view.created_at == NOW
    assert view.status is CaseStatus.NEW
    assert view.priority is Priority.P1
    assert view.reasons == (Reason.IMMEDIATE_DANGER, Reason.VIOLENCE, Reason.CONFINEMENT)
    assert view.linked_case_ids == ("AAAA-AAAA",)
    assert view.additions == ()
    assert view.media_count == 2
    assert view.contact_chat_id == USER_ID
    assert not view.withdrawn
    assert not view.quarantined
    assert await store.media("K7MX-Q9PT") == [photo(), VOICE]


async def test_an_empty_report_round_trips_with_nothing_encrypted(store, keyring, conn):
    """Every question skipped: the case is stored, no secret rows are written, and it reads back equal."""
    new, _ = make_case(keyring, report=Report(), chat_id=None)
    await store.create_case(new)
    view = await store.get_case(new.case_id)
    assert view is not None
    assert view.report == Report()
    assert await secret_fields(conn, new.case_id) == set()


async def test_blank_free_text_is_not_stored(store, keyring, conn):
    """Whitespace-only answers count as skipped."""
    report = Report(details="   ", place=Place(details="\n"))
    new, _ = make_case(keyring, report=report, chat_id=None)
    await store.create_case(new)
    assert await secret_fields(conn, new.case_id) == set()


async def test_sensitive_fields_are_encrypted_and_only_approximate_coordinates_are_clear(
    store, keyring, conn
):
    """Exact coordinates live in case_secrets; the case row keeps them rounded to about 1 km."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    rows = await conn.execute_fetchall(
        "SELECT approx_latitude, approx_longitude FROM cases WHERE id = ?", (new.case_id,)
    )
    assert list(rows) == [(10.63, 103.52)]
    assert await secret_fields(conn, new.case_id) == {
        "latitude",
        "longitude",
        "place_details",
        "details",
        "victim_name",
        "victim_passport_number",
        "victim_handle",
        "victim_last_contact",
        "contact_chat_id",
    }


async def test_reporters_who_refuse_contact_have_no_chat_id_stored(store, keyring, conn):
    """Contact preference NO: the chat id is dropped even if the service passed it."""
    new, _ = make_case(keyring, report=rich_report().model_copy(update={"contact": ContactPreference.NO}))
    await store.create_case(new)
    assert "contact_chat_id" not in await secret_fields(conn, new.case_id)
    assert await store.contact_chat_id(new.case_id) is None


async def test_contact_chat_id_is_returned_when_contact_is_allowed(store, keyring):
    """The team can find the chat to write to, decrypted."""
    new, _ = make_case(keyring, chat_id=987_654_321)
    await store.create_case(new)
    assert await store.contact_chat_id(new.case_id) == 987_654_321


async def test_get_case_of_an_unknown_id_is_none(store):
    """An id nobody filed reads as None."""
    assert await store.get_case("ZZZZ-ZZZZ") is None


async def test_create_case_records_the_update_and_an_outbox_row(store, keyring):
    """The update id is processed and coordinators are owed a NEW_CASE message at the case's priority."""
    new, _ = make_case(keyring, update_id=501, priority=Priority.P2)
    await store.create_case(new)
    assert await store.is_processed(501)
    assert not await store.is_processed(502)
    [item] = await store.pending_outbox(10)
    assert (item.case_id, item.kind, item.priority, item.attempts, item.sent_at) == (
        new.case_id,
        OutboxKind.NEW_CASE,
        Priority.P2,
        0,
        None,
    )


async def test_create_case_with_an_already_processed_update_writes_nothing(store, keyring, conn):
    """A redelivered update raises AlreadyProcessed and leaves every table as it was."""
    first, _ = make_case(keyring, update_id=700)
    await store.create_case(first)
    before = await row_counts(conn)
    again, _ = make_case(keyring, update_id=700)
    with pytest.raises(AlreadyProcessed):
        await store.create_case(again)
    assert await row_counts(conn) == before
    assert await store.get_case(again.case_id) is None


async def test_a_duplicate_case_id_is_refused_without_writing(store, keyring, conn):
    """A random-id collision raises DuplicateCaseId so the caller can draw again."""
    first, _ = make_case(keyring, case_id="K7MX-Q9PT")
    await store.create_case(first)
    before = await row_counts(conn)
    with pytest.raises(DuplicateCaseId):
        await store.create_case(make_case(keyring, case_id="K7MX-Q9PT", update_id=9)[0])
    assert await row_counts(conn) == before


async def test_a_failure_halfway_through_create_case_leaves_no_partial_rows(store, keyring, conn):
    """A receipt lookup already in use fails after the case rows are written: all of them roll back."""
    first, receipt = make_case(keyring)
    await store.create_case(first)
    before = await row_counts(conn)
    clash, _ = make_case(keyring, receipt=receipt, update_id=31, media=(photo(),), linked=(first.case_id,))
    with pytest.raises(CaseWriteError, match=r"receipts\.lookup"):
        await store.create_case(clash)
    assert await row_counts(conn) == before
    assert not await store.is_processed(31)
    assert not conn.in_transaction


async def test_an_exception_in_the_last_step_of_create_case_rolls_everything_back(
    store, keyring, conn, monkeypatch
):
    """Whatever fails at the end (here the outbox write), nothing of the case remains."""
    before = await row_counts(conn)

    async def broken_enqueue(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_enqueue", broken_enqueue)
    new, _ = make_case(keyring, update_id=77, media=(photo(),))
    with pytest.raises(RuntimeError, match="disk on fire"):
        await store.create_case(new)
    assert await row_counts(conn) == before


async def test_a_link_to_a_case_that_no_longer_exists_is_skipped(store, keyring):
    """A linked case purged meanwhile does not cost the new report: the link is dropped."""
    new, _ = make_case(keyring, linked=("GONE-GONE",))
    await store.create_case(new)
    view = await store.get_case(new.case_id)
    assert view is not None
    assert view.linked_case_ids == ()


async def test_links_are_visible_from_both_cases(store, keyring):
    """The earlier case lists the later one that corroborated it."""
    earlier, _ = make_case(keyring, case_id="AAAA-AAAA")
    later, _ = make_case(
        keyring, case_id="BBBB-BBBB", linked=("AAAA-AAAA",), created_at=NOW + timedelta(hours=1)
    )
    await store.create_case(earlier)
    await store.create_case(later)
    view = await store.get_case("AAAA-AAAA")
    assert view is not None
    assert view.linked_case_ids == ("BBBB-BBBB",)


async def test_a_case_linked_from_a_surge_shows_the_most_recent_links(store, keyring):
    """An early case corroborated by 25 later ones shows the 20 most recent, says there are more, and its
    ticket line stays short; a case with a few links shows them all."""
    first, _ = make_case(keyring, case_id="AAAA-AAAA")
    await store.create_case(first)
    later = []
    for n in range(25):
        # Ids in the opposite order to time, so "most recent" cannot be confused with "largest id".
        case_id = f"Z{99 - n:03d}-SURG"
        new, _ = make_case(
            keyring, case_id=case_id, linked=("AAAA-AAAA",), created_at=NOW + timedelta(minutes=n + 1)
        )
        await store.create_case(new)
        later.append(case_id)
    view = await store.get_case("AAAA-AAAA")
    assert view is not None
    assert view.linked_case_ids == tuple(sorted(later[-20:]))
    assert view.more_links
    few = await store.get_case(later[0])
    assert few is not None
    assert few.linked_case_ids == ("AAAA-AAAA",)
    assert not few.more_links


async def test_concurrent_writes_on_one_connection_take_turns(store, keyring):
    """Several reports committed at once on the shared connection all land, none half-written."""
    cases = [make_case(keyring, update_id=1000 + n)[0] for n in range(8)]
    await asyncio.gather(*(store.create_case(new) for new in cases))
    assert len(await store.pending_outbox(100)) == 8
    for new in cases:
        assert await store.get_case(new.case_id) is not None


async def test_a_row_encrypted_under_a_lost_key_fails_loudly(conn, keyring):
    """Opening the database with another secret raises DecryptionError rather than returning blanks."""
    new, _ = make_case(keyring)
    await CaseStore(conn, keyring).create_case(new)
    with pytest.raises(DecryptionError):
        await CaseStore(conn, Keyring(OTHER_ROOT)).get_case(new.case_id)


async def test_a_ciphertext_copied_to_another_case_or_field_fails_loudly(store, keyring, conn):
    """Swapping encrypted fields between rows or columns in the database is detected on read."""
    first, _ = make_case(keyring, case_id="AAAA-AAAA")
    second, _ = make_case(keyring, case_id="BBBB-BBBB", user_id=2)
    await store.create_case(first)
    await store.create_case(second)
    await conn.execute(
        "UPDATE case_secrets SET ciphertext = (SELECT ciphertext FROM case_secrets "
        "WHERE case_id = 'AAAA-AAAA' AND field = 'details') WHERE case_id = 'BBBB-BBBB' AND field = 'details'"
    )
    with pytest.raises(DecryptionError):
        await store.get_case("BBBB-BBBB")
    await conn.execute(
        "UPDATE case_secrets SET ciphertext = (SELECT ciphertext FROM case_secrets "
        "WHERE case_id = 'AAAA-AAAA' AND field = 'details') "
        "WHERE case_id = 'AAAA-AAAA' AND field = 'victim_name'"
    )
    with pytest.raises(DecryptionError):
        await store.get_case("AAAA-AAAA")


async def test_after_key_rotation_old_cases_read_and_new_cases_use_the_new_key(conn):
    """Cases sealed under the previous root stay readable and findable; new ones carry the new key id."""
    old = Keyring(ROOT)
    old_case, old_receipt = make_case(old, case_id="AAAA-AAAA")
    await CaseStore(conn, old).create_case(old_case)

    rotated = Keyring(OTHER_ROOT, previous=(ROOT,))
    store = CaseStore(conn, rotated)
    new_case, _ = make_case(rotated, case_id="BBBB-BBBB")
    await store.create_case(new_case)

    view = await store.get_case("AAAA-AAAA")
    assert view is not None
    assert view.report == old_case.report
    assert await store.case_by_receipt(old_receipt) == "AAAA-AAAA"
    key_ids = {
        case_id: {
            key_id_of(row[0])
            for row in await conn.execute_fetchall(
                "SELECT ciphertext FROM case_secrets WHERE case_id = ?", (case_id,)
            )
        }
        for case_id in ("AAAA-AAAA", "BBBB-BBBB")
    }
    assert key_ids == {"AAAA-AAAA": {old.key_id}, "BBBB-BBBB": {rotated.key_id}}


# --- reporters, receipts, rate limits ----------------------------------------------------------------


async def test_cases_of_lists_a_reporters_cases_newest_first(store, keyring):
    """/status from the same account finds that reporter's cases only."""
    older, _ = make_case(keyring, case_id="AAAA-AAAA")
    newer, _ = make_case(keyring, case_id="BBBB-BBBB", created_at=NOW + timedelta(minutes=5))
    someone_else, _ = make_case(keyring, case_id="CCCC-CCCC", user_id=USER_ID + 1)
    for new in (older, newer, someone_else):
        await store.create_case(new)
    assert await store.cases_of(keyring.pseudonym(USER_ID)) == ["BBBB-BBBB", "AAAA-AAAA"]
    assert await store.cases_of(keyring.pseudonym(1)) == []


async def test_case_by_receipt_finds_the_case_however_the_code_is_typed(store, keyring):
    """The receipt, with or without spaces and dashes, leads to its case; any other code to nothing."""
    new, receipt = make_case(keyring)
    await store.create_case(new)
    assert await store.case_by_receipt(receipt) == new.case_id
    assert await store.case_by_receipt(f"+{receipt[:4]}-{receipt[4:8]} {receipt[8:]}") == new.case_id
    wrong = str(int(receipt) + 1) if receipt[-1] != "9" else str(int(receipt) - 1)
    assert await store.case_by_receipt(wrong) is None
    assert await store.case_by_receipt("hello") is None


async def test_a_receipt_whose_hash_does_not_verify_finds_nothing(store, keyring, conn):
    """The keyed lookup alone is not enough: a row whose hash does not match is ignored."""
    new, receipt = make_case(keyring)
    await store.create_case(new)
    await conn.execute("UPDATE receipts SET hash = 'scrypt$16384$8$1$AAAA$BBBB'")
    assert await store.case_by_receipt(receipt) is None


async def test_reports_since_counts_a_reporters_recent_reports(store, keyring):
    """The rate limit sees how many reports this pseudonym filed in the window."""
    for minutes in (0, 30, 90):
        await store.create_case(make_case(keyring, created_at=NOW + timedelta(minutes=minutes))[0])
    pseudonym = keyring.pseudonym(USER_ID)
    assert await store.reports_since(pseudonym, NOW + timedelta(minutes=20)) == 2
    assert await store.reports_since(pseudonym, NOW) == 3
    assert await store.reports_since(keyring.pseudonym(1), NOW) == 0
    assert await store.prune_rate_events(NOW + timedelta(minutes=60)) == 2
    assert await store.reports_since(pseudonym, NOW) == 1


# --- corroboration summaries -------------------------------------------------------------------------


async def test_recent_summaries_include_withdrawn_but_not_quarantined_cases(store, keyring):
    """Corroboration sees recent cases with exact coordinates and place text; floods stay out."""
    old, _ = make_case(keyring, case_id="OOOO-OOOO", created_at=NOW - timedelta(days=40))
    recent, _ = make_case(keyring, case_id="RRRR-RRRR")
    flood, _ = make_case(keyring, case_id="FFFF-FFFF", quarantined=True)
    withdrawn, _ = make_case(keyring, case_id="WWWW-WWWW", created_at=NOW + timedelta(minutes=1))
    bare, _ = make_case(keyring, case_id="BBBB-BBBB", report=Report(), created_at=NOW + timedelta(minutes=2))
    for new in (old, recent, flood, withdrawn, bare):
        await store.create_case(new)
    await store.withdraw("WWWW-WWWW", update_id=None)

    summaries = await store.recent_summaries(NOW - timedelta(days=30))
    assert [summary.case_id for summary in summaries] == ["RRRR-RRRR", "WWWW-WWWW", "BBBB-BBBB"]
    first, withdrawn_summary, bare_summary = summaries
    place = rich_report().place
    assert (first.latitude, first.longitude, first.area_id) == (
        place.latitude,
        place.longitude,
        place.area_id,
    )
    assert first.place_details == place.details
    assert first.created_at == NOW
    assert withdrawn_summary.latitude == place.latitude
    assert withdrawn_summary.place_details is None
    assert (bare_summary.latitude, bare_summary.area_id, bare_summary.place_details) == (None, None, None)


# --- /add ----------------------------------------------------------------------------------------------


async def test_add_information_appends_text_and_media_with_an_outbox_row(store, keyring, clock):
    """/add keeps each text whole and in order, stores media encrypted and tells the coordinators."""
    new, _ = make_case(keyring, priority=Priority.P2)
    await store.create_case(new)
    long_text = "x" * 10_000
    clock.now = NOW + timedelta(minutes=1)
    await store.add_information(new.case_id, "First addition ‏عربى‏", [], update_id=801)
    clock.now = NOW + timedelta(minutes=2)
    await store.add_information(new.case_id, long_text, [photo(b"second photo")], update_id=802)
    await store.add_information(new.case_id, None, [VOICE], update_id=None)

    view = await store.get_case(new.case_id)
    assert view is not None
    assert view.additions == ("First addition ‏عربى‏", long_text)
    assert view.media_count == 2
    assert await store.is_processed(801)
    assert await store.is_processed(802)
    kinds = [(item.kind, item.priority) for item in await store.pending_outbox(10)]
    assert kinds == [(OutboxKind.NEW_CASE, Priority.P2)] + [(OutboxKind.CASE_UPDATE, Priority.P2)] * 3


async def test_add_information_refuses_unknown_withdrawn_or_repeated_requests(store, keyring, conn):
    """Unknown or withdrawn case, a redelivered update, an empty addition: each raises, writing nothing."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    await store.add_information(new.case_id, "once", [], update_id=900)
    before = await row_counts(conn)
    with pytest.raises(CaseNotFound):
        await store.add_information("ZZZZ-ZZZZ", "text", [], update_id=None)
    with pytest.raises(AlreadyProcessed):
        await store.add_information(new.case_id, "twice", [], update_id=900)
    with pytest.raises(ValueError, match="nothing to add"):
        await store.add_information(new.case_id, "  ", [], update_id=None)
    assert await row_counts(conn) == before
    await store.withdraw(new.case_id, update_id=None)
    with pytest.raises(CaseWithdrawn):
        await store.add_information(new.case_id, "after withdrawal", [photo()], update_id=None)


# --- amending a fast-tracked case ------------------------------------------------------------------------


async def test_amend_case_replaces_the_answers_and_triage_of_a_fast_tracked_case(store, keyring, conn):
    """The fuller report replaces the fast-track answers; new links and media are added; coordinators hear."""
    other, _ = make_case(keyring, case_id="AAAA-AAAA", user_id=1)
    await store.create_case(other)
    quick = Report(immediate_danger=True, fast_track=True, details="help, room 5", language="vi")
    new, receipt = make_case(keyring, case_id="K7MX-Q9PT", report=quick, update_id=1)
    await store.create_case(new)

    full = rich_report()
    triage = Triage(
        priority=Priority.P1,
        reasons=(Reason.IMMEDIATE_DANGER, Reason.CORROBORATED),
        score=200,
        corroborating_cases=1,
        rules_version="test-2",
    )
    await store.amend_case("K7MX-Q9PT", full, triage, ["AAAA-AAAA", "K7MX-Q9PT"], [photo()], update_id=2)

    view = await store.get_case("K7MX-Q9PT")
    assert view is not None
    assert view.report == full
    assert view.reasons == (Reason.IMMEDIATE_DANGER, Reason.CORROBORATED)
    assert view.linked_case_ids == ("AAAA-AAAA",)
    assert view.media_count == 1
    assert view.created_at == NOW
    assert view.contact_chat_id == USER_ID
    assert await store.case_by_receipt(receipt) == "K7MX-Q9PT"
    assert await store.is_processed(2)
    assert [item.kind for item in await store.pending_outbox(10) if item.case_id == "K7MX-Q9PT"] == [
        OutboxKind.NEW_CASE,
        OutboxKind.CASE_UPDATE,
    ]
    with pytest.raises(AlreadyProcessed):
        await store.amend_case("K7MX-Q9PT", full, triage, [], [], update_id=2)


async def test_amending_to_refuse_contact_erases_the_chat_id(store, keyring):
    """If the fuller report says the team may not write, the stored chat id goes."""
    new, _ = make_case(keyring, report=Report(fast_track=True, immediate_danger=True))
    await store.create_case(new)
    assert await store.contact_chat_id(new.case_id) == USER_ID
    refused = rich_report().model_copy(update={"contact": ContactPreference.NO})
    await store.amend_case(new.case_id, refused, new.triage, [], [], update_id=None)
    assert await store.contact_chat_id(new.case_id) is None


async def test_amend_case_refuses_unknown_or_withdrawn_cases(store, keyring):
    """Nothing can be amended into a case that does not exist or was withdrawn."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    with pytest.raises(CaseNotFound):
        await store.amend_case("ZZZZ-ZZZZ", rich_report(), new.triage, [], [], update_id=None)
    await store.withdraw(new.case_id, update_id=None)
    with pytest.raises(CaseWithdrawn):
        await store.amend_case(new.case_id, rich_report(), new.triage, [], [], update_id=None)


# --- /delete ---------------------------------------------------------------------------------------------


async def test_withdraw_erases_free_text_victim_identity_media_and_unlinks_the_reporter(store, keyring, conn):
    """After /delete the case stays for coordinators, flagged, without the reporter's words or identity."""
    new, receipt = make_case(keyring, media=(photo(),), update_id=1)
    await store.create_case(new)
    await store.add_information(new.case_id, "more details", [VOICE], update_id=2)
    await store.withdraw(new.case_id, update_id=3)

    view = await store.get_case(new.case_id)
    assert view is not None
    assert view.withdrawn
    assert view.priority is Priority.P1
    assert view.report.conditions == new.report.conditions
    assert view.report.details is None
    assert view.report.place.details is None
    assert (view.report.place.latitude, view.report.place.longitude) == (10.627543, 103.522016)
    victim = view.report.victim
    assert (victim.name, victim.passport_number, victim.handle, victim.last_contact) == (None,) * 4
    assert (victim.age_band, victim.sex, victim.nationality) == (
        new.report.victim.age_band,
        new.report.victim.sex,
        new.report.victim.nationality,
    )
    assert view.additions == ()
    assert view.media_count == 0
    assert view.contact_chat_id is None
    assert await store.media(new.case_id) == []
    assert await secret_fields(conn, new.case_id) == {"latitude", "longitude"}
    assert await store.cases_of(keyring.pseudonym(USER_ID)) == []
    assert await store.case_by_receipt(receipt) is None
    assert await store.reports_since(keyring.pseudonym(USER_ID), NOW) == 0
    assert await store.is_processed(3)
    assert [item.kind for item in await store.pending_outbox(10)] == [
        OutboxKind.NEW_CASE,
        OutboxKind.CASE_UPDATE,
        OutboxKind.WITHDRAWN,
    ]


async def test_withdrawing_twice_adds_nothing(store, keyring):
    """A second /delete is harmless: no second WITHDRAWN message."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    await store.withdraw(new.case_id, update_id=None)
    await store.withdraw(new.case_id, update_id=None)
    assert [item.kind for item in await store.pending_outbox(10)] == [
        OutboxKind.NEW_CASE,
        OutboxKind.WITHDRAWN,
    ]


async def test_withdraw_refuses_an_unknown_case_or_a_repeated_update(store, keyring, conn):
    """Unknown case and redelivered update raise, writing nothing."""
    new, _ = make_case(keyring, update_id=5)
    await store.create_case(new)
    before = await row_counts(conn)
    with pytest.raises(CaseNotFound):
        await store.withdraw("ZZZZ-ZZZZ", update_id=None)
    with pytest.raises(AlreadyProcessed):
        await store.withdraw(new.case_id, update_id=5)
    assert await row_counts(conn) == before


# --- outbox ----------------------------------------------------------------------------------------------


async def test_pending_outbox_is_ordered_by_priority_then_age_and_mark_sent_removes_items(
    store, keyring, clock
):
    """The worker takes P1 before P3 and, within a priority, the oldest first; sent items leave the queue."""
    low, _ = make_case(keyring, case_id="LLLL-LLLL", priority=Priority.P3)
    urgent, _ = make_case(keyring, case_id="UUUU-UUUU", priority=Priority.P1)
    urgent_later, _ = make_case(keyring, case_id="VVVV-VVVV", priority=Priority.P1)
    for new in (low, urgent, urgent_later):
        await store.create_case(new)
    items = await store.pending_outbox(10)
    assert [item.case_id for item in items] == ["UUUU-UUUU", "VVVV-VVVV", "LLLL-LLLL"]
    assert [item.case_id for item in await store.pending_outbox(1)] == ["UUUU-UUUU"]

    await store.mark_sent(items[0].id)
    await store.mark_sent(items[0].id)
    assert [item.case_id for item in await store.pending_outbox(10)] == ["VVVV-VVVV", "LLLL-LLLL"]
    with pytest.raises(OutboxItemNotFound):
        await store.mark_sent(99_999)


async def test_pending_outbox_with_now_skips_items_backing_off(store, keyring, conn):
    """An item whose next attempt is in the future waits."""
    new, _ = make_case(keyring)
    await store.create_case(new)
    await conn.execute("UPDATE outbox SET next_attempt_at = '2026-03-01T12:05:00.000000+00:00'")
    assert await store.pending_outbox(10, now=NOW) == []
    assert len(await store.pending_outbox(10, now=NOW + timedelta(minutes=5))) == 1
    assert len(await store.pending_outbox(10)) == 1


def test_withdrawal_erases_every_free_text_field_the_store_knows():
    """Every encrypted field except the exact coordinates is erased on withdrawal (none forgotten)."""
    kept = set(storage.cases._Secret) - set(storage.cases._ERASED_ON_WITHDRAWAL)
    assert kept == {storage.cases._Secret.LATITUDE, storage.cases._Secret.LONGITUDE}
