"""The workflow store: every change is one transaction of case, audit entry and card refresh; refusals write
nothing; notes are encrypted; the queue and search order cases as coordinators need."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiosqlite
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.crypto import Keyring
from bot.domain.models import CaseStatus, Condition, Place, Priority, Report
from bot.domain.records import CaseView, OutboxKind
from bot.domain.workflow import Action, ClosingReason, Role, WorkflowError, check_transition
from storage.audit import audit_entries, verify_audit
from storage.cases import CaseNotFound, CaseStore, CaseWriteError
from storage.db import open_database
from storage.migrations import migrate
from storage.workflow import WorkflowRefused, WorkflowStore, normalise_code
from tests.storage.factories import NOW, ROOT, Clock, make_case, rich_report, row_counts
from tests.storage.test_leaks import MARKER, checkpoint, leaks

MAI = 222  # a coordinator
AN = 333  # another coordinator
OTHER = "OTHR-2222"


async def new_case(store: CaseStore, keyring: Keyring, case_id: str = "CASE-1111", **kwargs) -> str:
    new, _ = make_case(keyring, case_id=case_id, **kwargs)
    await store.create_case(new)
    return new.case_id


async def refreshes(conn: aiosqlite.Connection, case_id: str) -> list[int]:
    """Priorities of the CARD_REFRESH rows queued for a case, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT priority FROM outbox WHERE case_id = ? AND kind = ? ORDER BY id",
        (case_id, OutboxKind.CARD_REFRESH.value),
    )
    return [int(row[0]) for row in rows]


async def view(store: CaseStore, case_id: str) -> CaseView:
    case = await store.get_case(case_id)
    assert case is not None
    return case


# --- each change: one case update, one audit entry, one card refresh, in one transaction -----------------

Step = Callable[[WorkflowStore, str], Awaitable[object]]


@dataclass(frozen=True)
class Mutation:
    setup: tuple[Step, ...]
    act: Step
    action: Action
    check: Callable[[CaseView], bool]


async def _claim(w: WorkflowStore, c: str) -> None:
    await w.claim(c, MAI)


async def _close(w: WorkflowStore, c: str) -> None:
    await w.set_status(c, CaseStatus.CLOSED, MAI, ClosingReason.RESCUED)


async def _tag(w: WorkflowStore, c: str) -> None:
    await w.tag(c, "#Embassy-VN", MAI)


MUTATIONS = {
    "claim": Mutation(
        (), _claim, Action.CLAIM, lambda v: v.assignee_id == MAI and v.status is CaseStatus.ACKNOWLEDGED
    ),
    "unassign": Mutation(
        (_claim,),
        lambda w, c: w.unassign(c, MAI),
        Action.UNASSIGN,
        lambda v: v.assignee_id is None and v.status is CaseStatus.ACKNOWLEDGED,
    ),
    "set_status": Mutation(
        (_claim,),
        lambda w, c: w.set_status(c, CaseStatus.IN_CONTACT, MAI),
        Action.SET_STATUS,
        lambda v: v.status is CaseStatus.IN_CONTACT,
    ),
    "close": Mutation(
        (), _close, Action.CLOSE, lambda v: v.status is CaseStatus.CLOSED and v.closing_reason == "rescued"
    ),
    "reopen": Mutation(
        (_close,),
        lambda w, c: w.set_status(c, CaseStatus.ACKNOWLEDGED, MAI),
        Action.REOPEN,
        lambda v: v.status is CaseStatus.ACKNOWLEDGED and v.closing_reason is None,
    ),
    "override_priority": Mutation(
        (),
        lambda w, c: w.override_priority(c, Priority.P3, MAI, "new_evidence"),
        Action.OVERRIDE_PRIORITY,
        lambda v: v.priority is Priority.P3,
    ),
    "add_note": Mutation(
        (), lambda w, c: w.add_note(c, "called the embassy", MAI), Action.NOTE, lambda v: True
    ),
    "link": Mutation(
        (),
        lambda w, c: w.link(c, OTHER, MAI, duplicate=False),
        Action.LINK,
        lambda v: OTHER in v.linked_case_ids,
    ),
    "link_duplicate": Mutation(
        (),
        lambda w, c: w.link(c, OTHER, MAI, duplicate=True),
        Action.LINK,
        lambda v: (
            v.status is CaseStatus.CLOSED and v.closing_reason == "duplicate" and OTHER in v.linked_case_ids
        ),
    ),
    "tag": Mutation((), _tag, Action.TAG, lambda v: v.tags == ("embassy-vn",)),
    "untag": Mutation(
        (_tag,), lambda w, c: w.untag(c, "embassy-vn", MAI), Action.TAG, lambda v: v.tags == ()
    ),
}


@pytest.mark.parametrize("name", MUTATIONS)
async def test_each_change_updates_the_case_audits_it_and_refreshes_the_card(
    name, conn, store, keyring, workflow, clock
):
    """One call: the case changes, one audit entry (action, actor, time), one CARD_REFRESH at its priority."""
    mutation = MUTATIONS[name]
    case_id = await new_case(store, keyring)
    await new_case(store, keyring, OTHER, priority=Priority.P2)
    for step in mutation.setup:
        await step(workflow, case_id)
    trail_before = len(await audit_entries(conn, case_id))
    refreshes_before = await refreshes(conn, case_id)
    clock.now = NOW + timedelta(minutes=10)

    await mutation.act(workflow, case_id)

    case = await view(store, case_id)
    assert mutation.check(case)
    trail = await audit_entries(conn, case_id)
    assert len(trail) == trail_before + 1
    assert (trail[0].action, trail[0].actor_id, trail[0].at) == (mutation.action.value, MAI, clock.now)
    assert await refreshes(conn, case_id) == [*refreshes_before, int(case.priority)]
    updated = await conn.execute_fetchall("SELECT updated_at FROM cases WHERE id = ?", (case_id,))
    assert list(updated) == [("2026-03-01T12:10:00.000000+00:00",)]
    assert (await verify_audit(conn)).intact


async def test_linking_refreshes_both_cards(conn, store, keyring, workflow):
    """The other case's card lists the link too, so it is refreshed in the same transaction."""
    case_id = await new_case(store, keyring)
    await new_case(store, keyring, OTHER, priority=Priority.P2)
    await workflow.link(case_id, OTHER, MAI, duplicate=False)
    assert await refreshes(conn, OTHER) == [2]
    assert (await view(store, OTHER)).linked_case_ids == (case_id,)
    assert (await audit_entries(conn, case_id))[0].details == {
        "other_case_id": OTHER,
        "duplicate": False,
    }


@pytest.mark.parametrize("failing_table", ["audit_log", "outbox"])
@pytest.mark.parametrize("name", MUTATIONS)
async def test_a_failure_anywhere_rolls_back_the_case_the_audit_entry_and_the_refresh(
    name, failing_table, conn, store, keyring, workflow
):
    """If the audit entry or the outbox row cannot be written, the case change is undone with it."""
    mutation = MUTATIONS[name]
    case_id = await new_case(store, keyring)
    await new_case(store, keyring, OTHER, priority=Priority.P2)
    for step in mutation.setup:
        await step(workflow, case_id)
    before = (await view(store, case_id), await workflow.notes(case_id), await row_counts(conn))
    await conn.execute(
        f"CREATE TRIGGER fail_here BEFORE INSERT ON {failing_table} "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )

    with pytest.raises(CaseWriteError, match="disk full"):
        await mutation.act(workflow, case_id)

    await conn.execute("DROP TRIGGER fail_here")
    assert (await view(store, case_id), await workflow.notes(case_id), await row_counts(conn)) == before
    assert (await verify_audit(conn)).intact


# --- refusals --------------------------------------------------------------------------------------------


async def refused(conn: aiosqlite.Connection, call: Awaitable[object], match: str) -> None:
    """Assert ``call`` is refused and writes nothing."""
    before = await row_counts(conn)
    with pytest.raises(WorkflowRefused, match=match):
        await call
    assert await row_counts(conn) == before


async def test_illegal_status_moves_are_refused_and_write_nothing(conn, store, keyring, workflow):
    """check_transition's refusals surface as WorkflowRefused, chained to the WorkflowError."""
    case_id = await new_case(store, keyring)
    await refused(conn, workflow.set_status(case_id, CaseStatus.NEW, MAI), "already new")
    await refused(conn, workflow.set_status(case_id, CaseStatus.CLOSED, MAI), "needs a reason")
    await refused(
        conn, workflow.set_status(case_id, CaseStatus.REFERRED, MAI, ClosingReason.RESCUED), "only closing"
    )
    await workflow.set_status(case_id, CaseStatus.CLOSED, MAI, ClosingReason.FALSE_REPORT)
    await refused(conn, workflow.set_status(case_id, CaseStatus.REFERRED, MAI), "reopened as acknowledged")
    await refused(
        conn, workflow.set_status(case_id, CaseStatus.CLOSED, MAI, ClosingReason.RESCUED), "already closed"
    )
    with pytest.raises(WorkflowRefused) as caught:
        await workflow.set_status(case_id, CaseStatus.CLOSED, MAI, ClosingReason.RESCUED)
    assert isinstance(caught.value.__cause__, WorkflowError)


async def test_claims_and_unassignments_that_make_no_sense_are_refused(conn, store, keyring, workflow):
    """Claiming twice, unassigning nobody, or claiming a closed case is refused; taking over is not."""
    case_id = await new_case(store, keyring)
    await refused(conn, workflow.unassign(case_id, MAI), "not assigned")
    await workflow.claim(case_id, MAI)
    await refused(conn, workflow.claim(case_id, MAI), "already assigned to you")
    await workflow.claim(case_id, AN)
    assert (await view(store, case_id)).assignee_id == AN
    assert (await audit_entries(conn, case_id))[0].details == {
        "previous_assignee": MAI,
        "status": "acknowledged",
    }
    await workflow.set_status(case_id, CaseStatus.CLOSED, AN, ClosingReason.ESCAPED)
    await refused(conn, workflow.claim(case_id, MAI), "reopen it first")


async def test_tags_links_and_overrides_that_make_no_sense_are_refused(conn, store, keyring, workflow):
    """Bad codes, repeated tags, self-links, repeated links, chains of duplicates and no-op overrides."""
    case_id = await new_case(store, keyring)
    await new_case(store, keyring, OTHER)
    await new_case(store, keyring, "THRD-3333")
    await refused(conn, workflow.tag(case_id, "two words", MAI), "a tag is")
    await refused(conn, workflow.tag(case_id, "x" * 33, MAI), "a tag is")
    await workflow.tag(case_id, "urgent", MAI)
    await refused(conn, workflow.tag(case_id, "#URGENT", MAI), "already tagged urgent")
    await refused(conn, workflow.untag(case_id, "other", MAI), "not tagged other")
    await refused(conn, workflow.link(case_id, case_id, MAI, duplicate=False), "itself")
    await workflow.link(case_id, OTHER, MAI, duplicate=False)
    await refused(conn, workflow.link(OTHER, case_id, MAI, duplicate=False), "already linked")
    await workflow.link(case_id, OTHER, MAI, duplicate=True)  # already linked, now marked a duplicate
    await refused(conn, workflow.link(case_id, "THRD-3333", MAI, duplicate=True), "already closed")
    await refused(conn, workflow.link("THRD-3333", case_id, MAI, duplicate=True), "itself a duplicate")
    await refused(conn, workflow.override_priority(OTHER, Priority.P1, MAI, "new_evidence"), "already P1")
    await refused(
        conn, workflow.override_priority(OTHER, Priority.P2, MAI, "because I said so"), "a reason is"
    )


async def test_changes_to_an_unknown_case_raise_case_not_found(conn, store, keyring, workflow):
    """Every change, and a link to an unknown case, raises CaseNotFound and writes nothing."""
    case_id = await new_case(store, keyring)
    before = await row_counts(conn)
    calls = [
        workflow.claim("NONE-NONE", MAI),
        workflow.unassign("NONE-NONE", MAI),
        workflow.set_status("NONE-NONE", CaseStatus.IN_CONTACT, MAI),
        workflow.override_priority("NONE-NONE", Priority.P2, MAI, "x"),
        workflow.add_note("NONE-NONE", "text", MAI),
        workflow.link("NONE-NONE", case_id, MAI, duplicate=False),
        workflow.link(case_id, "NONE-NONE", MAI, duplicate=True),
        workflow.tag("NONE-NONE", "x", MAI),
        workflow.untag("NONE-NONE", "x", MAI),
        workflow.record_view("NONE-NONE", MAI, Action.VIEW_CASE),
    ]
    for call in calls:
        with pytest.raises(CaseNotFound):
            await call
    assert await row_counts(conn) == before


async def test_a_blank_note_is_refused(store, keyring, workflow):
    case_id = await new_case(store, keyring)
    with pytest.raises(ValueError, match="some text"):
        await workflow.add_note(case_id, "  \n", MAI)


def test_codes_are_trimmed_case_folded_and_short():
    """Tags and reasons: '#Embassy-VN' is 'embassy-vn'; letters of any script count; spaces do not."""
    assert normalise_code(" #Embassy-VN ") == "embassy-vn"
    assert normalise_code("đại_sứ_quán") == "đại_sứ_quán"
    assert normalise_code("two words") is None
    assert normalise_code("-leading") is None
    assert normalise_code("") is None


# --- notes, views, overrides -----------------------------------------------------------------------------


async def test_notes_are_encrypted_at_rest_and_decrypted_on_read(
    conn, store, keyring, workflow, tmp_path, clock
):
    """The note's text is in neither the database file nor its WAL; notes() returns it with time, author."""
    case_id = await new_case(store, keyring, report=Report(language="en"))
    clock.now = NOW + timedelta(minutes=1)
    note_id = await workflow.add_note(case_id, f"{MARKER} spoke to the sister", MAI)
    clock.now = NOW + timedelta(minutes=2)
    await workflow.add_note(case_id, "second", AN)
    await checkpoint(conn)
    assert leaks(tmp_path / "beacon.db") == []
    assert await workflow.notes(case_id) == [
        (NOW + timedelta(minutes=1), MAI, f"{MARKER} spoke to the sister"),
        (NOW + timedelta(minutes=2), AN, "second"),
    ]
    assert (await audit_entries(conn, case_id))[1].details == {"note_id": note_id}


async def test_views_are_audited_without_touching_the_case(conn, store, keyring, workflow):
    """record_view() writes one audit entry and no outbox row; viewing the queue names no case."""
    case_id = await new_case(store, keyring)
    outbox_before = (await row_counts(conn))["outbox"]
    await workflow.record_view(case_id, MAI, Action.VIEW_DETAILS)
    await workflow.record_view(None, MAI, Action.VIEW_QUEUE)
    entries = await audit_entries(conn)
    assert [(e.action, e.case_id, e.actor_id) for e in entries[:2]] == [
        ("view_queue", None, MAI),
        ("view_details", case_id, MAI),
    ]
    assert (await row_counts(conn))["outbox"] == outbox_before
    with pytest.raises(ValueError, match="changes a case"):
        await workflow.record_view(case_id, MAI, Action.CLAIM)


async def test_an_override_moves_pending_alerts_and_survives_re_triage(conn, store, keyring, workflow):
    """A case lowered to P3 has its unsent alert at P3, and a later amendment (re-triage to P1) keeps P3."""
    case_id = await new_case(store, keyring)
    await workflow.override_priority(case_id, Priority.P3, MAI, "verified_elsewhere")
    pending = await store.pending_outbox(10)
    assert {(item.kind, item.priority) for item in pending} == {
        (OutboxKind.NEW_CASE, Priority.P3),
        (OutboxKind.CARD_REFRESH, Priority.P3),
    }
    new, _ = make_case(keyring, case_id=case_id, priority=Priority.P1)
    await store.amend_case(case_id, rich_report(), new.triage, [], [], update_id=None)
    assert (await view(store, case_id)).priority is Priority.P3
    assert (await store.pending_outbox(10))[-1].priority is Priority.P3
    assert (await audit_entries(conn, case_id))[0].details == {
        "from": 1,
        "to": 3,
        "reason": "verified_elsewhere",
    }


async def test_get_case_carries_the_workflow_fields(store, keyring, workflow, staff):
    """The card's data: assignee id and label (from staff), closing reason, status, tags sorted."""
    case_id = await new_case(store, keyring)
    await staff.grant(MAI, Role.COORDINATOR, by=None, label="Mai")
    await workflow.claim(case_id, MAI)
    await workflow.tag(case_id, "zeta", MAI)
    await workflow.tag(case_id, "alpha", MAI)
    await workflow.set_status(case_id, CaseStatus.CLOSED, MAI, ClosingReason.UNREACHABLE)
    case = await view(store, case_id)
    assert (case.assignee_id, case.assignee_label, case.status, case.closing_reason, case.tags) == (
        MAI,
        "Mai",
        CaseStatus.CLOSED,
        "unreachable",
        ("alpha", "zeta"),
    )


# --- lists of cases --------------------------------------------------------------------------------------


async def test_the_queue_is_open_cases_by_priority_then_age(store, keyring, workflow):
    """P1 before P2; within a priority the oldest first; closed and quarantined cases are not in it."""
    specs = [
        ("P2NW-0001", Priority.P2, 0, False),
        ("P1OL-0002", Priority.P1, -30, False),
        ("P1NW-0003", Priority.P1, 0, False),
        ("CLSD-0004", Priority.P1, -60, False),
        ("QUAR-0005", Priority.P1, -90, True),
        ("P4OL-0006", Priority.P4, -120, False),
    ]
    for case_id, priority, minutes, quarantined in specs:
        await new_case(
            store,
            keyring,
            case_id,
            priority=priority,
            created_at=NOW + timedelta(minutes=minutes),
            quarantined=quarantined,
        )
    await workflow.set_status("CLSD-0004", CaseStatus.CLOSED, MAI, ClosingReason.RESCUED)
    await store.withdraw("P1NW-0003", update_id=None)
    rows = await workflow.queue()
    assert [row.case_id for row in rows] == ["P1OL-0002", "P1NW-0003", "P2NW-0001", "P4OL-0006"]
    assert [row.withdrawn for row in rows] == [False, True, False, False]
    assert rows[0].created_at == NOW - timedelta(minutes=30)
    assert rows[0].area_id == "kh-preah-sihanouk"
    assert [row.case_id for row in await workflow.queue(limit=2)] == ["P1OL-0002", "P1NW-0003"]


async def test_mine_lists_the_open_cases_a_coordinator_holds(store, keyring, workflow):
    """Closed cases and other people's cases are not 'mine'."""
    for case_id in ("MINE-0001", "MINE-0002", "THRS-0003"):
        await new_case(store, keyring, case_id)
    await workflow.claim("MINE-0001", MAI)
    await workflow.claim("MINE-0002", MAI)
    await workflow.claim("THRS-0003", AN)
    await workflow.set_status("MINE-0002", CaseStatus.CLOSED, MAI, ClosingReason.RESCUED)
    rows = await workflow.mine(MAI)
    assert [(row.case_id, row.assignee_id, row.status) for row in rows] == [
        ("MINE-0001", MAI, CaseStatus.ACKNOWLEDGED)
    ]


async def test_find_combines_its_filters(store, keyring, workflow):
    """Status, priority, area and condition filters each narrow the result; open cases come first."""
    other_area = Report(place=Place(area_id="mm-myawaddy"), conditions=frozenset({Condition.DEBT_OR_RANSOM}))
    await new_case(store, keyring, "KHP1-0001", priority=Priority.P1)
    await new_case(store, keyring, "KHP2-0002", priority=Priority.P2)
    await new_case(store, keyring, "MMP2-0003", priority=Priority.P2, report=other_area)
    await new_case(store, keyring, "QUAR-0004", quarantined=True)
    await workflow.set_status("KHP1-0001", CaseStatus.CLOSED, MAI, ClosingReason.RESCUED)

    async def ids(**filters: object) -> list[str]:
        return [row.case_id for row in await workflow.find(**filters)]

    assert await ids() == ["KHP2-0002", "MMP2-0003", "KHP1-0001"]
    assert await ids(status=CaseStatus.CLOSED) == ["KHP1-0001"]
    assert await ids(priority=Priority.P2) == ["KHP2-0002", "MMP2-0003"]
    assert await ids(area_id="mm-myawaddy") == ["MMP2-0003"]
    assert await ids(condition=Condition.LOCKED_IN) == ["KHP2-0002", "KHP1-0001"]
    assert await ids(condition=Condition.DEBT_OR_RANSOM, area_id="kh-preah-sihanouk") == []
    assert await ids(area_id="kh-preah-sihanouk", status=CaseStatus.NEW, priority=Priority.P2) == [
        "KHP2-0002"
    ]
    assert await ids(quarantined=True) == ["QUAR-0004"]
    assert await ids(limit=1) == ["KHP2-0002"]


# --- any sequence of actions keeps the chain and the status consistent -----------------------------------

ACTORS = st.sampled_from([MAI, AN])
OPERATIONS = st.one_of(
    st.tuples(st.just("claim"), ACTORS),
    st.tuples(st.just("unassign"), ACTORS),
    st.tuples(
        st.just("status"), ACTORS, st.sampled_from(CaseStatus), st.none() | st.sampled_from(ClosingReason)
    ),
    st.tuples(st.just("override"), ACTORS, st.sampled_from(Priority)),
    st.tuples(st.just("tag"), ACTORS, st.sampled_from(["a", "b"])),
    st.tuples(st.just("untag"), ACTORS, st.sampled_from(["a", "b"])),
    st.tuples(st.just("duplicate"), ACTORS),
    st.tuples(st.just("note"), ACTORS),
)


@dataclass
class Model:
    """What the case should look like, kept by the rules alone."""

    status: CaseStatus = CaseStatus.NEW
    assignee: int | None = None
    priority: Priority = Priority.P1
    tags: frozenset[str] = frozenset()

    def legal(self, target: CaseStatus, reason: ClosingReason | None) -> bool:
        try:
            check_transition(self.status, target, reason)
        except WorkflowError:
            return False
        return True


async def play(path: Path, operations: list[tuple]) -> None:
    conn = await open_database(path)
    try:
        await migrate(conn)
        keyring = Keyring(ROOT)
        clock = Clock()
        store = CaseStore(conn, keyring, clock=clock)
        workflow = WorkflowStore(conn, keyring, clock=clock)
        case_id = await new_case(store, keyring)
        await new_case(store, keyring, OTHER)
        model = Model()
        applied = 0
        for op in operations:
            clock.now += timedelta(seconds=1)
            kind, actor, *args = op
            try:
                if kind == "claim":
                    expected = model.status is not CaseStatus.CLOSED and model.assignee != actor
                    await workflow.claim(case_id, actor)
                    model.assignee = actor
                    if model.status is CaseStatus.NEW:
                        model.status = CaseStatus.ACKNOWLEDGED
                elif kind == "unassign":
                    expected = model.assignee is not None
                    await workflow.unassign(case_id, actor)
                    model.assignee = None
                elif kind == "status":
                    target, reason = args
                    expected = model.legal(target, reason)
                    await workflow.set_status(case_id, target, actor, reason)
                    model.status = target
                elif kind == "override":
                    expected = args[0] != model.priority
                    await workflow.override_priority(case_id, args[0], actor, "hypothesis")
                    model.priority = args[0]
                elif kind == "tag":
                    expected = args[0] not in model.tags
                    await workflow.tag(case_id, args[0], actor)
                    model.tags |= {args[0]}
                elif kind == "untag":
                    expected = args[0] in model.tags
                    await workflow.untag(case_id, args[0], actor)
                    model.tags -= {args[0]}
                elif kind == "duplicate":
                    expected = model.legal(CaseStatus.CLOSED, ClosingReason.DUPLICATE)
                    await workflow.link(case_id, OTHER, actor, duplicate=True)
                    model.status = CaseStatus.CLOSED
                else:
                    expected = True
                    await workflow.add_note(case_id, "note", actor)
            except WorkflowRefused:
                assert not expected, op
            else:
                assert expected, op
                applied += 1

            case = await view(store, case_id)
            assert (case.status, case.assignee_id, case.priority, set(case.tags)) == (
                model.status,
                model.assignee,
                model.priority,
                model.tags,
            )
            assert (case.closing_reason is None) == (case.status is not CaseStatus.CLOSED)

        assert len(await audit_entries(conn, case_id, limit=1000)) == 1 + applied
        assert len(await refreshes(conn, case_id)) == applied
        assert (await verify_audit(conn)).intact
    finally:
        await conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPERATIONS, max_size=25))
def test_any_sequence_of_actions_keeps_the_chain_valid_and_the_status_lawful(operations):
    """Legal moves apply, illegal ones are refused; the case matches the rules' model; the chain verifies."""
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(play(Path(folder) / "beacon.db", operations))
