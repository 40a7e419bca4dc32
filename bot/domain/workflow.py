"""The coordinators' workflow: roles and what each may do, case statuses and the moves between them.

Pure rules. Every action is checked at the moment it is taken (`allowed`), against the actor's current
role, so a revoked coordinator is refused at once.
"""

from __future__ import annotations

from enum import StrEnum

from bot.domain.models import CaseStatus


class Role(StrEnum):
    """What a member of staff may do. Reporters have no role: they never act on cases."""

    ADMIN = "admin"
    COORDINATOR = "coordinator"
    ANALYST = "analyst"  # exports only


class Action(StrEnum):
    """Everything staff can do; each is written to the audit trail."""

    VIEW_QUEUE = "view_queue"
    VIEW_CASE = "view_case"
    VIEW_DETAILS = "view_details"
    CLAIM = "claim"
    UNASSIGN = "unassign"
    SET_STATUS = "set_status"
    CLOSE = "close"
    REOPEN = "reopen"
    OVERRIDE_PRIORITY = "override_priority"
    NOTE = "note"
    LINK = "link"
    TAG = "tag"
    REPLY = "reply"
    DUTY = "duty"
    GRANT = "grant"
    REVOKE = "revoke"
    EXPORT = "export"


_CASEWORK = frozenset({Role.ADMIN, Role.COORDINATOR})
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.VIEW_QUEUE: _CASEWORK,
    Action.VIEW_CASE: _CASEWORK,
    Action.VIEW_DETAILS: _CASEWORK,
    Action.CLAIM: _CASEWORK,
    Action.UNASSIGN: _CASEWORK,
    Action.SET_STATUS: _CASEWORK,
    Action.CLOSE: _CASEWORK,
    Action.REOPEN: _CASEWORK,
    Action.OVERRIDE_PRIORITY: _CASEWORK,
    Action.NOTE: _CASEWORK,
    Action.LINK: _CASEWORK,
    Action.TAG: _CASEWORK,
    Action.REPLY: _CASEWORK,
    Action.DUTY: _CASEWORK,
    Action.GRANT: frozenset({Role.ADMIN}),
    Action.REVOKE: frozenset({Role.ADMIN}),
    Action.EXPORT: frozenset({Role.ADMIN, Role.ANALYST}),
}


def allowed(role: Role | None, action: Action) -> bool:
    """Whether someone with `role` (None: no role, or revoked) may take `action`."""
    return role is not None and role in PERMISSIONS[action]


class ClosingReason(StrEnum):
    RESCUED = "rescued"
    ESCAPED = "escaped"
    DUPLICATE = "duplicate"
    UNREACHABLE = "unreachable"
    FALSE_REPORT = "false_report"
    WITHDRAWN = "withdrawn"


# The forward path of a case; any open case may also be closed, and a closed one reopened.
FORWARD: dict[CaseStatus, CaseStatus] = {
    CaseStatus.NEW: CaseStatus.ACKNOWLEDGED,
    CaseStatus.ACKNOWLEDGED: CaseStatus.IN_CONTACT,
    CaseStatus.IN_CONTACT: CaseStatus.REFERRED,
    CaseStatus.REFERRED: CaseStatus.CLOSED,
}
OPEN_STATUSES = frozenset(
    {CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_CONTACT, CaseStatus.REFERRED}
)


class WorkflowError(Exception):
    """A move the workflow does not allow (e.g. closing without a reason, or from closed to referred)."""


def check_transition(current: CaseStatus, target: CaseStatus, reason: ClosingReason | None = None) -> None:
    """Raise WorkflowError unless a case may go from `current` to `target` (with `reason` when closing).

    Allowed: any move between open statuses (caseworkers correct mistakes), any open status to closed with
    a closing reason, and closed back to acknowledged (reopen). Staying put is not a move.
    """
    if current == target:
        raise WorkflowError(f"the case is already {target.value}")
    if target is CaseStatus.CLOSED:
        if current is CaseStatus.CLOSED:
            raise WorkflowError("the case is already closed")
        if reason is None:
            raise WorkflowError("closing needs a reason")
        return
    if reason is not None:
        raise WorkflowError("only closing takes a reason")
    if current is CaseStatus.CLOSED and target is not CaseStatus.ACKNOWLEDGED:
        raise WorkflowError("a closed case is reopened as acknowledged")
