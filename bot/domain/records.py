"""Records passed between the intake service and storage: what is written, and what is read back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain.models import CaseStatus, Priority, Reason, Report, Triage


class MediaKind(StrEnum):
    PHOTO = "photo"
    VOICE = "voice"


class Media(BaseModel):
    """A sanitised photo (re-encoded, no metadata) or a voice note, as bytes to be stored encrypted."""

    model_config = ConfigDict(frozen=True)

    kind: MediaKind
    content: bytes
    mime_type: str


class OutboxKind(StrEnum):
    """What the coordinators must be told."""

    NEW_CASE = "new_case"
    CASE_UPDATE = "case_update"
    WITHDRAWN = "withdrawn"
    CARD_REFRESH = "card_refresh"  # a coordinator changed the case: edit the card, post nothing


class NewCase(BaseModel):
    """A triaged report ready to be committed, with everything that must land in the same transaction."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    created_at: datetime
    report: Report
    triage: Triage
    linked_case_ids: tuple[str, ...] = ()
    reporter_pseudonym: str
    receipt_lookup: str  # keyed HMAC of the receipt code: finds the case without storing the code
    receipt_hash: str  # slow salted hash of the receipt code: verifies it
    contact_chat_id: int | None = None  # stored encrypted, only when the reporter allows contact
    media: tuple[Media, ...] = ()
    quarantined: bool = False  # suspected flood: held for coordinators to review in bulk
    update_id: int | None = None  # the Telegram update that submitted it, recorded as processed


class CaseView(BaseModel):
    """A stored case as the service reads it back (decrypted)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    created_at: datetime
    status: CaseStatus
    priority: Priority
    reasons: tuple[Reason, ...]
    report: Report
    withdrawn: bool
    quarantined: bool
    linked_case_ids: tuple[str, ...]  # the most recent linked cases (both directions), sorted by id
    additions: tuple[str, ...]  # decrypted texts appended with /add
    media_count: int
    contact_chat_id: int | None
    assignee_id: int | None = None  # a coordinator's Telegram id (staff, never a reporter)
    assignee_label: str | None = None
    closing_reason: str | None = None
    tags: tuple[str, ...] = ()
    more_links: bool = False  # more cases are linked than ``linked_case_ids`` holds


class OutboxItem(BaseModel):
    """A message owed to the coordinators, committed with the change that caused it."""

    model_config = ConfigDict(frozen=True)

    id: int
    case_id: str
    kind: OutboxKind
    priority: Priority
    created_at: datetime
    attempts: int
    sent_at: datetime | None


class TeamMessage(BaseModel):
    """A message from the team held for a reporter until they check in: text and/or sanitised media."""

    model_config = ConfigDict(frozen=True)

    text: str
    media: Media | None = None
