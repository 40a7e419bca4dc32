"""Staff: roles granted, revoked and seeded from BEACON_ADMINS, labels and duty, each change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.workflow import Action, Role
from storage.audit import audit_entries, verify_audit
from storage.workflow import MAX_LABEL, NotStaff
from tests.storage.factories import NOW

ADMIN = 111
COORDINATOR = 222
ANALYST = 333


async def test_an_unknown_user_has_no_role_and_no_label(staff):
    """Nobody is staff until granted."""
    assert await staff.role_of(COORDINATOR) is None
    assert await staff.label_of(COORDINATOR) is None
    assert await staff.staff() == []


async def test_a_grant_gives_the_role_and_is_audited(conn, staff):
    """grant() stores role and label and writes one GRANT entry naming the grantee by id, not by name."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN, label="  Mai  ")
    assert await staff.role_of(COORDINATOR) is Role.COORDINATOR
    assert await staff.label_of(COORDINATOR) == "Mai"
    [entry] = await audit_entries(conn)
    assert (entry.actor_id, entry.action, entry.case_id) == (ADMIN, Action.GRANT.value, None)
    assert entry.details == {"staff_id": COORDINATOR, "role": "coordinator", "previous_role": None}


async def test_a_second_grant_changes_the_role_and_keeps_the_label(conn, staff):
    """Granting another role replaces the first; a grant without a label keeps the known one."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN, label="Mai")
    await staff.grant(COORDINATOR, Role.ANALYST, by=ADMIN)
    assert await staff.role_of(COORDINATOR) is Role.ANALYST
    assert await staff.label_of(COORDINATOR) == "Mai"
    assert (await audit_entries(conn))[0].details["previous_role"] == "coordinator"


async def test_a_revoked_member_has_no_role_at_once_but_keeps_their_label(conn, staff, clock):
    """revoke() ends the role (and duty), audited; the label stays for old cards; a second revoke is False."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN, label="Mai")
    await staff.set_duty(COORDINATOR, True, by=COORDINATOR)
    clock.now = NOW + timedelta(hours=1)
    assert await staff.revoke(COORDINATOR, by=ADMIN) is True
    assert await staff.role_of(COORDINATOR) is None
    assert await staff.label_of(COORDINATOR) == "Mai"
    assert await staff.on_duty() == []
    assert await staff.staff() == []
    latest = (await audit_entries(conn))[0]
    assert (latest.action, latest.actor_id, latest.at) == (Action.REVOKE.value, ADMIN, clock.now)
    assert latest.details == {"staff_id": COORDINATOR, "role": "coordinator"}

    assert await staff.revoke(COORDINATOR, by=ADMIN) is False
    assert await staff.revoke(999, by=ADMIN) is False
    assert len(await audit_entries(conn)) == 3  # grant, duty, revoke: refusals write nothing


async def test_a_revoked_member_can_be_granted_again_and_starts_off_duty(staff):
    """A fresh grant lifts the revocation; duty is not restored with it."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN)
    await staff.set_duty(COORDINATOR, True, by=COORDINATOR)
    await staff.revoke(COORDINATOR, by=ADMIN)
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN)
    assert await staff.role_of(COORDINATOR) is Role.COORDINATOR
    assert await staff.on_duty() == []


async def test_seed_admins_grants_the_configured_ids_that_are_not_admin(conn, staff):
    """BEACON_ADMINS: new ids and demoted or revoked ones become admin (by nobody); admins are left alone."""
    await staff.grant(ADMIN, Role.ADMIN, by=None)
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN)
    await staff.grant(ANALYST, Role.ANALYST, by=ADMIN)
    await staff.revoke(ANALYST, by=ADMIN)
    before = len(await audit_entries(conn))

    assert await staff.seed_admins([ADMIN, COORDINATOR, ANALYST, 444, 444]) == [COORDINATOR, ANALYST, 444]
    for user_id in (ADMIN, COORDINATOR, ANALYST, 444):
        assert await staff.role_of(user_id) is Role.ADMIN
    seeded = (await audit_entries(conn))[:3]
    assert len(await audit_entries(conn)) == before + 3
    assert {(e.actor_id, e.details["source"], e.details["role"]) for e in seeded} == {
        (None, "config", "admin")
    }

    assert await staff.seed_admins([ADMIN, 444]) == []
    assert (await verify_audit(conn)).intact


async def test_labels_are_kept_for_current_members_only_and_trimmed(staff):
    """set_label() updates a member's label (capped at Telegram's 64), and ignores anyone without a role."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN)
    await staff.set_label(COORDINATOR, "A" * 100)
    assert await staff.label_of(COORDINATOR) == "A" * MAX_LABEL
    await staff.set_label(999, "Stranger")
    assert await staff.label_of(999) is None
    await staff.revoke(COORDINATOR, by=ADMIN)
    await staff.set_label(COORDINATOR, "Changed")
    assert await staff.label_of(COORDINATOR) == "A" * MAX_LABEL


async def test_duty_is_listed_and_audited(conn, staff):
    """set_duty() puts members on and off duty, each change an audited DUTY entry; on_duty() lists them."""
    await staff.grant(COORDINATOR, Role.COORDINATOR, by=ADMIN, label="Mai")
    await staff.grant(ADMIN, Role.ADMIN, by=None)
    await staff.set_duty(COORDINATOR, True, by=COORDINATOR)
    await staff.set_duty(ADMIN, True, by=ADMIN)
    assert await staff.on_duty() == [(ADMIN, None), (COORDINATOR, "Mai")]
    await staff.set_duty(ADMIN, False, by=ADMIN)
    assert await staff.on_duty() == [(COORDINATOR, "Mai")]
    assert await staff.staff() == [
        (ADMIN, Role.ADMIN, None, False),
        (COORDINATOR, Role.COORDINATOR, "Mai", True),
    ]
    duty = [e for e in await audit_entries(conn) if e.action == Action.DUTY.value]
    assert [(e.actor_id, e.details) for e in duty] == [
        (ADMIN, {"staff_id": ADMIN, "on": False}),
        (ADMIN, {"staff_id": ADMIN, "on": True}),
        (COORDINATOR, {"staff_id": COORDINATOR, "on": True}),
    ]


async def test_duty_needs_a_role(conn, staff):
    """Someone without a role cannot go on duty, and nothing is written."""
    with pytest.raises(NotStaff):
        await staff.set_duty(999, True, by=999)
    assert await audit_entries(conn) == []
