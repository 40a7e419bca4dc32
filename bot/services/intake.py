"""The intake use cases: submit a report, find one's cases, add information, withdraw.

The service triages and corroborates with pure domain code, makes the case id and receipt code, and hands
everything to the store in one call so that it is committed in one transaction. It knows nothing of
Telegram or SQL: the store is a Protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot import crypto
from bot.domain.corroboration import find_corroborating, newest_linked
from bot.domain.models import CaseStatus, CaseSummary, ContactPreference, Place, Priority, Report, Triage
from bot.domain.records import CaseView, Media, NewCase, TeamMessage
from bot.domain.triage import triage

# GlobaLeaks allows 10 reports an hour per source; Beacon is stricter by default. Reports over the limit
# are still stored (a person in danger may repeat themself), but quarantined for coordinators to review.
DEFAULT_REPORTS_PER_HOUR = 5
CORROBORATION_WINDOW = timedelta(days=30)
# Receipt guesses: a few mistyped codes are normal; many are an attack. Per reporter, in memory.
RECEIPT_ATTEMPTS = 5
RECEIPT_WINDOW_SECONDS = 600.0


class CaseRepository(Protocol):
    """What the intake service needs from storage (implemented by storage.cases.CaseStore)."""

    async def create_case(self, new: NewCase) -> None: ...

    async def is_processed(self, update_id: int) -> bool: ...

    async def get_case(self, case_id: str) -> CaseView | None: ...

    async def recent_summaries(self, since: datetime, place: Place | None = None) -> list[CaseSummary]: ...

    async def reports_since(self, pseudonym: str, since: datetime) -> int: ...

    async def cases_of(self, pseudonym: str) -> list[str]: ...

    async def case_by_receipt(self, code: str) -> str | None: ...

    async def add_information(
        self, case_id: str, text: str | None, media: Sequence[Media], update_id: int | None
    ) -> None: ...

    async def withdraw(self, case_id: str, update_id: int | None) -> None: ...

    async def amend_case(
        self,
        case_id: str,
        report: Report,
        triage: Triage,
        linked_case_ids: Sequence[str],
        media: Sequence[Media],
        update_id: int | None,
    ) -> None: ...


class AlreadySubmitted(Exception):
    """The update that carried this submission was already processed (Telegram delivered it twice)."""


class TooManyAttempts(Exception):
    """Too many wrong receipt codes from this reporter recently: try again later."""


@dataclass(frozen=True)
class Receipt:
    """What the reporter is told after submitting: the case id and the code to keep."""

    case_id: str
    code: str
    priority: Priority

    @property
    def formatted_code(self) -> str:
        return crypto.format_receipt(self.code)


@dataclass(frozen=True)
class StatusView:
    """A neutral status for the reporter: never the priority, never coordinators' names or notes."""

    case_id: str
    status: CaseStatus
    withdrawn: bool
    messages: tuple[TeamMessage, ...] = ()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IntakeService:
    """Reporter-facing use cases over a CaseRepository and the keyring."""

    def __init__(
        self,
        store: CaseRepository,
        keyring: crypto.Keyring,
        *,
        reports_per_hour: int = DEFAULT_REPORTS_PER_HOUR,
        clock: Callable[[], datetime] = _utcnow,
        inbox: Callable[[str], Awaitable[list[TeamMessage]]] | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.reports_per_hour = reports_per_hour
        self.clock = clock
        # Collects (and erases) the team's messages held for a case until its reporter checks in.
        self.inbox = inbox
        self._receipt_failures: dict[str, deque[float]] = {}

    def pseudonym(self, reporter_id: int) -> str:
        """The reporter's keyed pseudonym: the only form in which Beacon keeps who reported."""
        return self.keyring.pseudonym(reporter_id)

    async def submit(
        self,
        report: Report,
        *,
        reporter_id: int,
        contact_chat_id: int | None,
        media: Sequence[Media] = (),
        update_id: int | None = None,
    ) -> Receipt:
        """Triage, corroborate and commit a report in one transaction; return the receipt to show.

        Raises AlreadySubmitted when `update_id` was processed before.
        """
        if update_id is not None and await self.store.is_processed(update_id):
            raise AlreadySubmitted
        now = self.clock()
        pseudonym = self.pseudonym(reporter_id)
        recent = await self.store.reports_since(pseudonym, now - timedelta(hours=1))
        candidates = await self.store.recent_summaries(now - CORROBORATION_WINDOW, report.place)
        linked = find_corroborating(report, candidates, now)
        result = triage(report, len(linked))
        code = crypto.new_receipt_code()
        allow_contact = report.contact not in (None, ContactPreference.NO)
        new = NewCase(
            case_id=crypto.new_case_id(),
            created_at=now,
            report=report,
            triage=result,
            linked_case_ids=newest_linked(linked, candidates),
            reporter_pseudonym=pseudonym,
            receipt_lookup=self.keyring.receipt_lookup(code),
            # scrypt is slow on purpose: keep it off the event loop.
            receipt_hash=await asyncio.to_thread(crypto.hash_receipt, code),
            contact_chat_id=contact_chat_id if allow_contact else None,
            media=tuple(media),
            quarantined=recent >= self.reports_per_hour,
            update_id=update_id,
        )
        await self.store.create_case(new)
        return Receipt(new.case_id, code, result.priority)

    async def amend(
        self, case_id: str, report: Report, media: Sequence[Media] = (), *, update_id: int | None = None
    ) -> Priority:
        """Replace a fast-tracked case's answers with the fuller report, re-triaged; return the new priority.

        Raises AlreadySubmitted when `update_id` was processed before.
        """
        if update_id is not None and await self.store.is_processed(update_id):
            raise AlreadySubmitted
        now = self.clock()
        candidates = await self.store.recent_summaries(now - CORROBORATION_WINDOW, report.place)
        linked = find_corroborating(report, [c for c in candidates if c.case_id != case_id], now)
        result = triage(report, len(linked))
        links = newest_linked(linked, candidates)
        await self.store.amend_case(case_id, report, result, links, media, update_id)
        return result.priority

    async def my_cases(self, reporter_id: int) -> list[str]:
        """Case ids this Telegram account reported and has not withdrawn, newest first."""
        return await self.store.cases_of(self.pseudonym(reporter_id))

    async def case_for_code(self, reporter_id: int, text: str) -> str | None:
        """The case a receipt code opens, or None. Raises TooManyAttempts after repeated wrong codes."""
        key = self.pseudonym(reporter_id)
        failures = self._receipt_failures.setdefault(key, deque())
        horizon = time.monotonic() - RECEIPT_WINDOW_SECONDS
        while failures and failures[0] < horizon:
            failures.popleft()
        if len(failures) >= RECEIPT_ATTEMPTS:
            raise TooManyAttempts
        code = crypto.normalise_receipt(text)
        case_id = await self.store.case_by_receipt(code) if code else None
        if case_id is None:
            failures.append(time.monotonic())
        return case_id

    async def status(self, case_id: str) -> StatusView | None:
        """The neutral status of a case for its reporter, with the team's messages waiting for them."""
        case = await self.store.get_case(case_id)
        if case is None:
            return None
        messages = tuple(await self.inbox(case_id)) if self.inbox is not None and not case.withdrawn else ()
        return StatusView(case.case_id, case.status, case.withdrawn, messages)

    async def add_information(
        self, case_id: str, text: str | None, media: Sequence[Media], update_id: int | None = None
    ) -> None:
        """Append text and media to a case; the coordinators are told in the same transaction."""
        await self.store.add_information(case_id, text, media, update_id)

    async def withdraw(self, case_id: str, update_id: int | None = None) -> None:
        """Unlink the reporter and erase their words and media; the case stays, flagged as withdrawn."""
        await self.store.withdraw(case_id, update_id)
