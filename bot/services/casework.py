"""Caseworkers' use cases: every action checks the actor's role at that moment, then changes the case.

Authorization lives here, not in handlers, so that a button, a command or any future entry point is
refused the same way. Storage writes each change with its audit row and a card refresh in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.domain.models import CaseStatus, Condition, Priority
from bot.domain.records import CaseView, Media
from bot.domain.workflow import Action, ClosingReason, Role, allowed


class NotAllowed(Exception):
    """The actor has no role that permits this action (never says more than that)."""


class UnknownCase(Exception):
    """No case has this id."""


class QueueRowLike(Protocol):
    @property
    def case_id(self) -> str: ...

    @property
    def priority(self) -> Priority: ...

    @property
    def status(self) -> CaseStatus: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def area_id(self) -> str | None: ...

    @property
    def assignee_id(self) -> int | None: ...

    @property
    def withdrawn(self) -> bool: ...


class StaffPort(Protocol):
    async def role_of(self, user_id: int) -> Role | None: ...

    async def grant(self, user_id: int, role: Role, *, by: int | None, label: str | None = None) -> None: ...

    async def revoke(self, user_id: int, *, by: int | None) -> bool: ...

    async def set_label(self, user_id: int, label: str) -> None: ...

    async def set_duty(self, user_id: int, on: bool, *, by: int | None) -> None: ...

    async def staff(self) -> list[tuple[int, Role, str | None, bool]]: ...


class WorkflowPort(Protocol):
    async def claim(self, case_id: str, actor_id: int) -> None: ...

    async def unassign(self, case_id: str, actor_id: int) -> None: ...

    async def set_status(
        self, case_id: str, status: CaseStatus, actor_id: int, reason: ClosingReason | None = None
    ) -> None: ...

    async def record_view(self, case_id: str | None, actor_id: int, action: Action) -> None: ...

    async def override_priority(
        self, case_id: str, priority: Priority, actor_id: int, reason_code: str
    ) -> None: ...

    async def add_note(self, case_id: str, text: str, actor_id: int) -> str: ...

    async def notes(self, case_id: str) -> list[tuple[datetime, int | None, str]]: ...

    async def link(self, case_id: str, other_id: str, actor_id: int, *, duplicate: bool) -> None: ...

    async def tag(self, case_id: str, tag: str, actor_id: int) -> None: ...

    async def find(
        self,
        *,
        status: CaseStatus | None = None,
        priority: Priority | None = None,
        area_id: str | None = None,
        condition: Condition | None = None,
        quarantined: bool = False,
        limit: int = 50,
    ) -> Sequence[QueueRowLike]: ...

    async def queue(self, limit: int = 20) -> Sequence[QueueRowLike]: ...

    async def mine(self, user_id: int) -> Sequence[QueueRowLike]: ...


class CaseReader(Protocol):
    async def get_case(self, case_id: str) -> CaseView | None: ...

    async def media(self, case_id: str) -> list[Media]: ...


class CaseworkService:
    """Role-checked actions of staff on cases."""

    def __init__(self, staff: StaffPort, workflow: WorkflowPort, cases: CaseReader) -> None:
        self.staff = staff
        self.workflow = workflow
        self.cases = cases

    async def role(self, user_id: int) -> Role | None:
        return await self.staff.role_of(user_id)

    async def require(self, user_id: int, action: Action) -> Role:
        """The actor's role if it permits `action`; raises NotAllowed otherwise (a revocation counts)."""
        role = await self.staff.role_of(user_id)
        if role is None or not allowed(role, action):
            raise NotAllowed
        return role

    async def _case(self, case_id: str) -> CaseView:
        case = await self.cases.get_case(case_id)
        if case is None:
            raise UnknownCase(case_id)
        return case

    async def seen_as(self, user_id: int, label: str) -> None:
        """Remember a staff member's first name for cards (only for people who already have a role)."""
        if await self.staff.role_of(user_id) is not None:
            await self.staff.set_label(user_id, label[:64])

    async def claim(self, actor: int, case_id: str) -> None:
        await self.require(actor, Action.CLAIM)
        await self._case(case_id)
        await self.workflow.claim(case_id, actor)

    async def unassign(self, actor: int, case_id: str) -> None:
        await self.require(actor, Action.UNASSIGN)
        await self._case(case_id)
        await self.workflow.unassign(case_id, actor)

    async def set_status(self, actor: int, case_id: str, status: CaseStatus) -> None:
        await self.require(actor, Action.REOPEN if status is CaseStatus.ACKNOWLEDGED else Action.SET_STATUS)
        await self._case(case_id)
        await self.workflow.set_status(case_id, status, actor)

    async def close(self, actor: int, case_id: str, reason: ClosingReason) -> None:
        await self.require(actor, Action.CLOSE)
        await self._case(case_id)
        await self.workflow.set_status(case_id, CaseStatus.CLOSED, actor, reason)

    async def case(self, actor: int, case_id: str) -> CaseView:
        await self.require(actor, Action.VIEW_CASE)
        return await self._case(case_id)

    async def view_case(self, actor: int, case_id: str) -> CaseView:
        """A case's card for `/case`; looking is an action too, and is audited."""
        case = await self.case(actor, case_id)
        await self.workflow.record_view(case_id, actor, Action.VIEW_CASE)
        return case

    async def details(self, actor: int, case_id: str) -> tuple[CaseView, list[Media]]:
        """The sensitive details of a case, for the actor's private chat; the access is audited first."""
        await self.require(actor, Action.VIEW_DETAILS)
        case = await self._case(case_id)
        await self.workflow.record_view(case_id, actor, Action.VIEW_DETAILS)
        return case, await self.cases.media(case_id)

    async def queue(self, actor: int, limit: int = 20) -> Sequence[QueueRowLike]:
        await self.require(actor, Action.VIEW_QUEUE)
        await self.workflow.record_view(None, actor, Action.VIEW_QUEUE)
        return await self.workflow.queue(limit)

    async def mine(self, actor: int) -> Sequence[QueueRowLike]:
        await self.require(actor, Action.VIEW_QUEUE)
        await self.workflow.record_view(None, actor, Action.VIEW_QUEUE)
        return await self.workflow.mine(actor)

    async def override_priority(self, actor: int, case_id: str, priority: Priority, reason: str) -> None:
        """Set a case's priority by hand, with a short reason code (audited; survives re-triage)."""
        await self.require(actor, Action.OVERRIDE_PRIORITY)
        await self._case(case_id)
        await self.workflow.override_priority(case_id, priority, actor, reason)

    async def note(self, actor: int, case_id: str, text: str) -> None:
        """Add an internal note (encrypted; never shown to the reporter)."""
        await self.require(actor, Action.NOTE)
        await self._case(case_id)
        await self.workflow.add_note(case_id, text, actor)

    async def notes(self, actor: int, case_id: str) -> list[tuple[datetime, int | None, str]]:
        await self.require(actor, Action.VIEW_CASE)
        await self._case(case_id)
        await self.workflow.record_view(case_id, actor, Action.VIEW_CASE)
        return await self.workflow.notes(case_id)

    async def link(self, actor: int, case_id: str, other_id: str, *, duplicate: bool) -> None:
        """Link two cases; as a duplicate, `case_id` is closed in favour of `other_id`."""
        await self.require(actor, Action.LINK)
        await self._case(case_id)
        await self._case(other_id)
        await self.workflow.link(case_id, other_id, actor, duplicate=duplicate)

    async def tag(self, actor: int, case_id: str, tag: str) -> None:
        await self.require(actor, Action.TAG)
        await self._case(case_id)
        await self.workflow.tag(case_id, tag, actor)

    async def find(
        self,
        actor: int,
        *,
        status: CaseStatus | None = None,
        priority: Priority | None = None,
        area_id: str | None = None,
        condition: Condition | None = None,
    ) -> Sequence[QueueRowLike]:
        await self.require(actor, Action.VIEW_QUEUE)
        await self.workflow.record_view(None, actor, Action.VIEW_QUEUE)
        return await self.workflow.find(
            status=status, priority=priority, area_id=area_id, condition=condition
        )

    async def grant(self, actor: int, user_id: int, role: Role) -> None:
        await self.require(actor, Action.GRANT)
        await self.staff.grant(user_id, role, by=actor)

    async def revoke(self, actor: int, user_id: int) -> bool:
        await self.require(actor, Action.REVOKE)
        if user_id == actor:
            raise NotAllowed  # an admin cannot lock the last door behind themself by accident
        return await self.staff.revoke(user_id, by=actor)

    async def admins(self) -> list[int]:
        """Telegram ids of the current admins (for operator notices; not an action, so not role-checked)."""
        return [user_id for user_id, role, _label, _duty in await self.staff.staff() if role is Role.ADMIN]

    async def duty(self, actor: int, on: bool) -> None:
        await self.require(actor, Action.DUTY)
        await self.staff.set_duty(actor, on, by=actor)
