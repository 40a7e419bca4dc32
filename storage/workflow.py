"""The coordinators' workflow in storage: staff and their roles, and every change coordinators make to cases.

Each change is one transaction that updates the case, appends an audit entry and queues a CARD_REFRESH
outbox row, so the card is edited even if the bot dies right after the commit. Roles are not checked here
(the casework service does that at the moment of the action); the moves themselves are checked against
``bot.domain.workflow.check_transition``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from bot.crypto import Keyring
from bot.domain.models import MAX_FREE_TEXT, CaseStatus, Condition, Priority
from bot.domain.records import OutboxKind
from bot.domain.workflow import OPEN_STATUSES, Action, ClosingReason, Role, WorkflowError, check_transition
from storage.audit import AuditValue, append_audit
from storage.cases import CaseNotFound, CaseWriteError
from storage.db import StorageError, transaction
from storage.timestamps import from_db_time, to_db_time, utc_now

__all__ = [
    "AUDIT_ONLY_ACTIONS",
    "MAX_LABEL",
    "NotStaff",
    "QueueRow",
    "StaffStore",
    "WorkflowRefused",
    "WorkflowStore",
    "normalise_code",
]

# Telegram's own limit for a first name.
MAX_LABEL = 64

# Actions that change no case: record_view() only writes them to the audit trail.
AUDIT_ONLY_ACTIONS = frozenset(
    {Action.VIEW_QUEUE, Action.VIEW_CASE, Action.VIEW_DETAILS, Action.REPLY, Action.EXPORT}
)

# Tags and priority-override reasons are codes a coordinator types ("embassy-vn", "new_evidence"): a
# letter or digit of any script, then up to 31 more letters, digits, "-" or "_". Never free text.
_CODE = re.compile(r"^[^\W_][\w-]{0,31}$")

_OPEN = tuple(status.value for status in sorted(OPEN_STATUSES))
# Spelled out, not bound: the partial indexes of migration 0008 serve only this exact WHERE term.
_OPEN_SQL = f"status IN ({', '.join(repr(status) for status in _OPEN)})"
_QUEUE_COLUMNS = "id, priority, status, created_at, area_id, assignee_id, withdrawn_at"


class WorkflowRefused(StorageError):
    """The workflow does not allow this move (e.g. closing without a reason, claiming a closed case)."""


class NotStaff(StorageError):
    """The user has no current role (never granted, or revoked)."""


def normalise_code(text: str) -> str | None:
    """Return a tag or reason code as stored (trimmed, without a leading '#', case-folded), or None if it is
    not a short code."""
    code = text.strip().removeprefix("#").casefold()
    return code if _CODE.match(code) else None


def _require_code(text: str, what: str) -> str:
    code = normalise_code(text)
    if code is None:
        raise WorkflowRefused(f"a {what} is 1-32 letters, digits, '-' or '_'")
    return code


def _check(current: CaseStatus, target: CaseStatus, reason: ClosingReason | None = None) -> None:
    try:
        check_transition(current, target, reason)
    except WorkflowError as exc:
        raise WorkflowRefused(str(exc)) from exc


def _label(label: str | None) -> str | None:
    if label is None or not label.strip():
        return None
    return label.strip()[:MAX_LABEL]


@dataclass(frozen=True)
class QueueRow:
    """A case as a list of cases shows it: no content, only what sorts and identifies it."""

    case_id: str
    priority: Priority
    status: CaseStatus
    created_at: datetime
    area_id: str | None
    assignee_id: int | None
    withdrawn: bool


def _queue_row(row: Any) -> QueueRow:
    return QueueRow(
        case_id=str(row[0]),
        priority=Priority(row[1]),
        status=CaseStatus(row[2]),
        created_at=from_db_time(row[3]),
        area_id=row[4],
        assignee_id=row[5],
        withdrawn=row[6] is not None,
    )


# --- staff -----------------------------------------------------------------------------------------------


class StaffStore:
    """Who is staff, with which role, under which label, and who is on duty.

    Grants, revocations and duty changes are audited in the same transaction; ``by`` is the acting admin's
    (or member's) id, or None for the operator's configuration (``BEACON_ADMINS``).
    """

    def __init__(self, conn: aiosqlite.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    async def role_of(self, user_id: int) -> Role | None:
        """The user's current role; None if they were never granted one, or it was revoked."""
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT role FROM staff WHERE user_id = ? AND revoked_at IS NULL", (user_id,)
            )
        )
        return Role(rows[0][0]) if rows else None

    async def label_of(self, user_id: int) -> str | None:
        """The name shown on cards for this member (kept after a revocation, for old cases), or None."""
        rows = list(
            await self._conn.execute_fetchall("SELECT label FROM staff WHERE user_id = ?", (user_id,))
        )
        return rows[0][0] if rows else None

    async def grant(self, user_id: int, role: Role, *, by: int | None, label: str | None = None) -> None:
        """Give ``user_id`` the role ``role`` (replacing any other, lifting a revocation), audited as GRANT.

        ``label`` replaces the stored one when given.
        """
        async with transaction(self._conn):
            await self._grant(user_id, role, by=by, label=label, details={})

    async def revoke(self, user_id: int, *, by: int | None) -> bool:
        """Take away the user's role (and their duty), audited as REVOKE. False if they had no role.

        The row stays, revoked, so cards still name who handled a case; their cases stay assigned to them
        until someone unassigns or claims them.
        """
        now = self._clock()
        async with transaction(self._conn):
            role = await self.role_of(user_id)
            if role is None:
                return False
            await self._conn.execute(
                "UPDATE staff SET revoked_at = ?, on_duty = 0 WHERE user_id = ?", (to_db_time(now), user_id)
            )
            await append_audit(
                self._conn,
                at=now,
                actor_id=by,
                action=Action.REVOKE.value,
                case_id=None,
                details={"staff_id": user_id, "role": role.value},
            )
        return True

    async def seed_admins(self, user_ids: Iterable[int]) -> list[int]:
        """Make every id in ``BEACON_ADMINS`` an admin, in one transaction; return those that were not.

        The configuration is the operator's word: a listed id is admin at every start, even if an admin
        revoked or demoted it since (to remove an admin for good, take them out of the list, then revoke).
        Ids already admin are left alone and not audited.
        """
        granted: list[int] = []
        async with transaction(self._conn):
            for user_id in dict.fromkeys(user_ids):
                if await self.role_of(user_id) is not Role.ADMIN:
                    await self._grant(user_id, Role.ADMIN, by=None, label=None, details={"source": "config"})
                    granted.append(user_id)
        return granted

    async def set_label(self, user_id: int, label: str) -> None:
        """Remember a current member's first name for cards (ignored for anyone without a role)."""
        async with transaction(self._conn):
            await self._conn.execute(
                "UPDATE staff SET label = ? WHERE user_id = ? AND revoked_at IS NULL AND label IS NOT ?",
                (_label(label), user_id, _label(label)),
            )

    async def set_duty(self, user_id: int, on: bool, *, by: int | None) -> None:
        """Put a member on duty or off it, audited as DUTY. Raises ``NotStaff`` if they have no role."""
        now = self._clock()
        async with transaction(self._conn):
            if await self.role_of(user_id) is None:
                raise NotStaff(f"user {user_id} has no role")
            await self._conn.execute("UPDATE staff SET on_duty = ? WHERE user_id = ?", (int(on), user_id))
            await append_audit(
                self._conn,
                at=now,
                actor_id=by,
                action=Action.DUTY.value,
                case_id=None,
                details={"staff_id": user_id, "on": on},
            )

    async def on_duty(self) -> list[tuple[int, str | None]]:
        """(user id, label) of every current member on duty, by user id."""
        rows = await self._conn.execute_fetchall(
            "SELECT user_id, label FROM staff WHERE on_duty = 1 AND revoked_at IS NULL ORDER BY user_id"
        )
        return [(int(row[0]), row[1]) for row in rows]

    async def staff(self) -> list[tuple[int, Role, str | None, bool]]:
        """(user id, role, label, on duty) of every current member (revoked ones left out), by user id."""
        rows = await self._conn.execute_fetchall(
            "SELECT user_id, role, label, on_duty FROM staff WHERE revoked_at IS NULL ORDER BY user_id"
        )
        return [(int(row[0]), Role(row[1]), row[2], bool(row[3])) for row in rows]

    async def _grant(
        self,
        user_id: int,
        role: Role,
        *,
        by: int | None,
        label: str | None,
        details: Mapping[str, AuditValue],
    ) -> None:
        """Grant inside the caller's transaction, with its audit entry."""
        now = self._clock()
        previous = await self.role_of(user_id)
        await self._conn.execute(
            "INSERT INTO staff (user_id, role, label, on_duty, granted_by, granted_at, revoked_at) "
            "VALUES (?, ?, ?, 0, ?, ?, NULL) ON CONFLICT (user_id) DO UPDATE SET role = excluded.role, "
            "label = COALESCE(excluded.label, staff.label), granted_by = excluded.granted_by, "
            "granted_at = excluded.granted_at, revoked_at = NULL, "
            "on_duty = CASE WHEN staff.revoked_at IS NULL THEN staff.on_duty ELSE 0 END",
            (user_id, role.value, _label(label), by, to_db_time(now)),
        )
        await append_audit(
            self._conn,
            at=now,
            actor_id=by,
            action=Action.GRANT.value,
            case_id=None,
            details={
                "staff_id": user_id,
                "role": role.value,
                "previous_role": None if previous is None else previous.value,
                **details,
            },
        )


# --- cases -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CaseState:
    status: CaseStatus
    priority: Priority
    assignee_id: int | None


@dataclass
class _Change:
    """What a change in progress read, and what it reports to the audit trail."""

    state: _CaseState
    action: Action
    details: dict[str, AuditValue] = field(default_factory=dict)
    also_refresh: list[str] = field(default_factory=list)  # other cases whose card shows this change


class WorkflowStore:
    """Coordinators' changes to cases (each audited, each refreshing the card) and their lists of cases.

    Every change raises ``CaseNotFound`` for an unknown case, ``WorkflowRefused`` for a move the workflow
    does not allow, and ``CaseWriteError`` if SQLite refuses a row; in each case nothing is written.
    """

    def __init__(
        self, conn: aiosqlite.Connection, keyring: Keyring, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._conn = conn
        self._keyring = keyring
        self._clock = clock

    # --- changes -----------------------------------------------------------------------------------------

    async def claim(self, case_id: str, actor_id: int) -> None:
        """Assign the case to the actor (taking it over from another coordinator if need be); a new case
        becomes acknowledged. Refused for a closed case, or one the actor already holds."""
        async with self._change(case_id, actor_id, Action.CLAIM) as change:
            state = change.state
            if state.status is CaseStatus.CLOSED:
                raise WorkflowRefused("a closed case cannot be claimed; reopen it first")
            if state.assignee_id == actor_id:
                raise WorkflowRefused("the case is already assigned to you")
            status = CaseStatus.ACKNOWLEDGED if state.status is CaseStatus.NEW else state.status
            if status is not state.status:
                _check(state.status, status)
            await self._conn.execute(
                "UPDATE cases SET assignee_id = ?, status = ? WHERE id = ?", (actor_id, status.value, case_id)
            )
            change.details.update(previous_assignee=state.assignee_id, status=status.value)

    async def unassign(self, case_id: str, actor_id: int) -> None:
        """Leave the case without an assignee (its status stays). Refused if nobody holds it."""
        async with self._change(case_id, actor_id, Action.UNASSIGN) as change:
            if change.state.assignee_id is None:
                raise WorkflowRefused("the case is not assigned")
            await self._conn.execute("UPDATE cases SET assignee_id = NULL WHERE id = ?", (case_id,))
            change.details.update(previous_assignee=change.state.assignee_id)

    async def set_status(
        self, case_id: str, status: CaseStatus, actor_id: int, reason: ClosingReason | None = None
    ) -> None:
        """Move the case to ``status`` as ``check_transition`` allows; closing needs ``reason``.

        Audited as CLOSE, REOPEN (closed back to acknowledged, which clears the closing reason) or
        SET_STATUS. The assignee stays.
        """
        async with self._change(case_id, actor_id, Action.SET_STATUS) as change:
            current = change.state.status
            _check(current, status, reason)
            await self._set_status(case_id, status, reason)
            if status is CaseStatus.CLOSED:
                change.action = Action.CLOSE
            elif current is CaseStatus.CLOSED:
                change.action = Action.REOPEN
            change.details.update({"from": current.value, "to": status.value})
            if reason is not None:
                change.details["reason"] = reason.value

    async def override_priority(
        self, case_id: str, priority: Priority, actor_id: int, reason_code: str
    ) -> None:
        """Set the case's priority by hand, for a reason given as a short code (e.g. "new_evidence").

        The override survives a later re-triage of the case. Alerts about it not yet sent move to the new
        priority, so a case raised to P1 is not left queued behind P3s. Refused if the priority is the same
        or the reason is not a short code.
        """
        reason = _require_code(reason_code, "reason")
        async with self._change(case_id, actor_id, Action.OVERRIDE_PRIORITY) as change:
            previous = change.state.priority
            if priority == previous:
                raise WorkflowRefused(f"the case is already P{int(priority)}")
            await self._conn.execute(
                "UPDATE cases SET priority = ?, priority_overridden = 1 WHERE id = ?",
                (int(priority), case_id),
            )
            await self._conn.execute(
                "UPDATE outbox SET priority = ? WHERE case_id = ? AND sent_at IS NULL AND dead_at IS NULL",
                (int(priority), case_id),
            )
            change.details.update({"from": int(previous), "to": int(priority), "reason": reason})

    async def add_note(self, case_id: str, text: str, actor_id: int) -> str:
        """Add an internal note (stored encrypted) and return its id.

        The audit entry names the note, never its text. Raises ``ValueError`` for a blank note or one
        longer than ``MAX_FREE_TEXT``.
        """
        if not text.strip():
            raise ValueError("a note needs some text")
        if len(text) > MAX_FREE_TEXT:
            raise ValueError(f"a note is at most {MAX_FREE_TEXT} characters")
        note_id = secrets.token_hex(8)
        sealed = self._keyring.encrypt_text(text, table="case_notes", column="text", row_id=note_id)
        async with self._change(case_id, actor_id, Action.NOTE) as change:
            await self._conn.execute(
                "INSERT INTO case_notes (id, case_id, author_id, created_at, ciphertext) "
                "VALUES (?, ?, ?, ?, ?)",
                (note_id, case_id, actor_id, to_db_time(self._clock()), sealed),
            )
            change.details.update(note_id=note_id)
        return note_id

    async def link(self, case_id: str, other_id: str, actor_id: int, *, duplicate: bool) -> None:
        """Link two cases; with ``duplicate``, ``case_id`` duplicates ``other_id`` and is closed as such.

        Both cards are refreshed. Raises ``CaseNotFound`` if either case is unknown; refused for a case
        linked to itself, cases already linked (unless now marking a duplicate), a duplicate of a case
        that is itself a duplicate, or a duplicate that is already closed.
        """
        async with self._change(case_id, actor_id, Action.LINK) as change:
            if other_id == case_id:
                raise WorkflowRefused("a case cannot be linked to itself")
            await self._state(other_id)  # raises CaseNotFound
            linked = bool(
                await self._conn.execute_fetchall(
                    "SELECT 1 FROM case_links WHERE (case_id = ? AND linked_case_id = ?) "
                    "OR (case_id = ? AND linked_case_id = ?)",
                    (case_id, other_id, other_id, case_id),
                )
            )
            if linked and not duplicate:
                raise WorkflowRefused("the cases are already linked")
            if not linked:
                await self._conn.execute(
                    "INSERT INTO case_links (case_id, linked_case_id) VALUES (?, ?)", (case_id, other_id)
                )
            change.details.update(other_case_id=other_id, duplicate=duplicate)
            if duplicate:
                if await self._closing_reason(other_id) == ClosingReason.DUPLICATE.value:
                    raise WorkflowRefused("the other case is itself a duplicate; merge into its original")
                _check(change.state.status, CaseStatus.CLOSED, ClosingReason.DUPLICATE)
                await self._set_status(case_id, CaseStatus.CLOSED, ClosingReason.DUPLICATE)
                change.details.update({"from": change.state.status.value, "to": CaseStatus.CLOSED.value})
            change.also_refresh.append(other_id)

    async def tag(self, case_id: str, tag: str, actor_id: int) -> None:
        """Put a tag (a short code, stored case-folded without '#') on the case. Refused if it is there."""
        code = _require_code(tag, "tag")
        async with self._change(case_id, actor_id, Action.TAG) as change:
            async with self._conn.execute(
                "INSERT OR IGNORE INTO case_tags (case_id, tag) VALUES (?, ?)", (case_id, code)
            ) as cursor:
                if cursor.rowcount == 0:
                    raise WorkflowRefused(f"the case is already tagged {code}")
            change.details.update(tag=code, removed=False)

    async def untag(self, case_id: str, tag: str, actor_id: int) -> None:
        """Take a tag off the case (audited as TAG, removed). Refused if the case does not have it."""
        code = _require_code(tag, "tag")
        async with self._change(case_id, actor_id, Action.TAG) as change:
            async with self._conn.execute(
                "DELETE FROM case_tags WHERE case_id = ? AND tag = ?", (case_id, code)
            ) as cursor:
                if cursor.rowcount == 0:
                    raise WorkflowRefused(f"the case is not tagged {code}")
            change.details.update(tag=code, removed=True)

    async def record_view(
        self,
        case_id: str | None,
        actor_id: int,
        action: Action,
        *,
        details: Mapping[str, AuditValue] | None = None,
    ) -> None:
        """Write to the audit trail an action that changes no case: viewing the queue (no case), a case or
        its details, a reply relayed, an export. Raises ``ValueError`` for any other action,
        ``CaseNotFound`` for an unknown case."""
        if action not in AUDIT_ONLY_ACTIONS:
            raise ValueError(f"{action.value} changes a case: use its own method")
        async with transaction(self._conn):
            if case_id is not None:
                await self._state(case_id)
            await append_audit(
                self._conn,
                at=self._clock(),
                actor_id=actor_id,
                action=action.value,
                case_id=case_id,
                details=details or {},
            )

    # --- reads -------------------------------------------------------------------------------------------

    async def notes(self, case_id: str) -> list[tuple[datetime, int | None, str]]:
        """(written at, author id, text) of the case's notes, decrypted, oldest first.

        Raises ``bot.crypto.DecryptionError`` if a note does not open.
        """
        rows = await self._conn.execute_fetchall(
            "SELECT id, created_at, author_id, ciphertext FROM case_notes WHERE case_id = ? "
            "ORDER BY created_at, rowid",
            (case_id,),
        )
        return [
            (
                from_db_time(row[1]),
                row[2],
                self._keyring.decrypt_text(row[3], table="case_notes", column="text", row_id=row[0]),
            )
            for row in rows
        ]

    async def queue(self, limit: int = 20) -> list[QueueRow]:
        """Open cases, most urgent first, then oldest; quarantined ones are left out (held for review)."""
        # Named: left to itself, SQLite would sort every open case by status instead of reading the
        # first `limit` of them in order (migration 0008).
        return await self._rows(
            f"quarantined = 0 AND {_OPEN_SQL}",
            [],
            "priority, created_at, id",
            limit,
            source="cases INDEXED BY cases_open_queue",
        )

    async def mine(self, user_id: int, limit: int = 50) -> list[QueueRow]:
        """Open cases assigned to ``user_id``, in queue order."""
        return await self._rows(
            f"assignee_id = ? AND {_OPEN_SQL}", [user_id], "priority, created_at, id", limit
        )

    async def find(
        self,
        *,
        status: CaseStatus | None = None,
        priority: Priority | None = None,
        area_id: str | None = None,
        condition: Condition | None = None,
        quarantined: bool = False,
        limit: int = 50,
    ) -> list[QueueRow]:
        """Cases matching every filter given (any status by default): open ones first, then by priority and
        age. Quarantined cases are searched only with ``quarantined=True``, and then only they."""
        where = ["quarantined = ?"]
        params: list[Any] = [int(quarantined)]
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if priority is not None:
            where.append("priority = ?")
            params.append(int(priority))
        if area_id is not None:
            where.append("area_id = ?")
            params.append(area_id)
        if condition is not None:
            where.append(
                "EXISTS (SELECT 1 FROM case_conditions k WHERE k.case_id = cases.id AND k.condition = ?)"
            )
            params.append(condition.value)
        return await self._rows(
            " AND ".join(where), params, "status = 'closed', priority, created_at, id", limit
        )

    # --- helpers -----------------------------------------------------------------------------------------

    async def _rows(
        self, where: str, params: list[Any], order: str, limit: int, *, source: str = "cases"
    ) -> list[QueueRow]:
        rows = await self._conn.execute_fetchall(
            f"SELECT {_QUEUE_COLUMNS} FROM {source} WHERE {where} ORDER BY {order} LIMIT ?",  # noqa: S608 (constants only)
            [*params, limit],
        )
        return [_queue_row(row) for row in rows]

    @asynccontextmanager
    async def _change(self, case_id: str, actor_id: int, action: Action) -> AsyncIterator[_Change]:
        """One change in one transaction: the block changes the case, then its audit entry and the card
        refreshes are written. An exception in the block rolls everything back."""
        conn = self._conn
        now = self._clock()
        try:
            async with transaction(conn):
                change = _Change(state=await self._state(case_id), action=action)
                yield change
                await conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (to_db_time(now), case_id))
                await append_audit(
                    conn,
                    at=now,
                    actor_id=actor_id,
                    action=change.action.value,
                    case_id=case_id,
                    details=change.details,
                )
                for refreshed in dict.fromkeys([case_id, *change.also_refresh]):
                    # At the case's priority as it is now, after an override too.
                    await conn.execute(
                        "INSERT INTO outbox (case_id, kind, priority, created_at) "
                        "SELECT id, ?, priority, ? FROM cases WHERE id = ?",
                        (OutboxKind.CARD_REFRESH.value, to_db_time(now), refreshed),
                    )
        except aiosqlite.Error as exc:
            raise CaseWriteError(f"{action.value} on case {case_id} was not saved: {exc}") from exc

    async def _state(self, case_id: str) -> _CaseState:
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT status, priority, assignee_id FROM cases WHERE id = ?", (case_id,)
            )
        )
        if not rows:
            raise CaseNotFound(f"no case {case_id}")
        return _CaseState(CaseStatus(rows[0][0]), Priority(rows[0][1]), rows[0][2])

    async def _closing_reason(self, case_id: str) -> str | None:
        rows = list(
            await self._conn.execute_fetchall("SELECT closing_reason FROM cases WHERE id = ?", (case_id,))
        )
        return rows[0][0] if rows else None

    async def _set_status(self, case_id: str, status: CaseStatus, reason: ClosingReason | None) -> None:
        await self._conn.execute(
            "UPDATE cases SET status = ?, closing_reason = ? WHERE id = ?",
            (status.value, None if reason is None else reason.value, case_id),
        )
