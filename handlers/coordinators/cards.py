"""Ticket cards and topic names for the coordinators, in their language and time zone.

Minimal by design (a group can be infiltrated): the card never shows free text, building text, exact
coordinates or the potential victim's identity, and never anything about the reporter's Telegram account,
which Beacon does not hold. Cards are plain text: nothing from a report can become markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.gazetteer import Gazetteer
from bot.domain.models import CaseStatus, ContactPreference, Priority, Reason, ReporterType
from bot.domain.records import CaseView, OutboxKind
from bot.domain.workflow import FORWARD, ClosingReason
from bot.i18n import Translator
from handlers.intake.questions import (
    condition_label,
    locale_of,
    people_label,
    possession_label,
    territory_name,
)

PRIORITY_MARK = {Priority.P1: "🔴", Priority.P2: "🟠", Priority.P3: "🟡", Priority.P4: "⚪"}
MAX_TOPIC_NAME = 128


def reason_label(t: Translator, reason: Reason) -> str:
    """A triage reason in the coordinator's language."""
    _ = t.gettext
    labels: dict[Reason, Callable[[], str]] = {
        Reason.IMMEDIATE_DANGER: lambda: _("immediate danger"),
        Reason.VIOLENCE: lambda: _("violence"),
        Reason.SEXUAL_ABUSE: lambda: _("sexual abuse"),
        Reason.CONFINEMENT: lambda: _("confinement"),
        Reason.THREATS: lambda: _("threats"),
        Reason.DOCUMENTS_WITHHELD: lambda: _("passport withheld"),
        Reason.PHONE_TAKEN: lambda: _("phone taken"),
        Reason.DEBT_OR_RANSOM: lambda: _("debt or ransom"),
        Reason.FORCED_CRIMINALITY: lambda: _("forced to scam"),
        Reason.DEPRIVATION: lambda: _("no food or medical care"),
        Reason.WAGES_WITHHELD: lambda: _("wages withheld"),
        Reason.EXCESSIVE_HOURS: lambda: _("excessive hours"),
        Reason.DECEPTION: lambda: _("deceptive recruitment"),
        Reason.SOLD_OR_MOVED: lambda: _("sold or moved"),
        Reason.MINORS_PRESENT: lambda: _("minors present"),
        Reason.MANY_PEOPLE: lambda: _("many people held"),
        Reason.CORROBORATED: lambda: _("corroborated by other reports"),
    }
    return labels[reason]()


def status_label(t: Translator, status: CaseStatus) -> str:
    _ = t.gettext
    return {
        CaseStatus.NEW: lambda: _("new"),
        CaseStatus.ACKNOWLEDGED: lambda: _("acknowledged"),
        CaseStatus.IN_CONTACT: lambda: _("in contact"),
        CaseStatus.REFERRED: lambda: _("referred"),
        CaseStatus.CLOSED: lambda: _("closed"),
    }[status]()


def reporter_type_label(t: Translator, value: ReporterType | None) -> str:
    _ = t.gettext
    if value is None:
        return "—"
    return {
        ReporterType.SELF: lambda: _("the potential victim"),
        ReporterType.RELATIVE: lambda: _("a relative or friend"),
        ReporterType.WITNESS: lambda: _("a witness"),
    }[value]()


def contact_preference_label(t: Translator, value: ContactPreference | None) -> str:
    _ = t.gettext
    if value is None:
        return "—"
    return {
        ContactPreference.YES: lambda: _("yes"),
        ContactPreference.ON_CHECK_IN: lambda: _("only when they check in"),
        ContactPreference.NO: lambda: _("no"),
    }[value]()


def area_text(t: Translator, case: CaseView, gazetteer: Gazetteer) -> str:
    """The case's area at gazetteer resolution: never the exact point or the building text."""
    place = case.report.place
    parts = []
    if place.area_id and (area := gazetteer.area(place.area_id)) is not None:
        parts.append(area.name)
    if place.country:
        parts.append(territory_name(t, place.country))
    text = ", ".join(parts) if parts else t.gettext("unknown")
    if place.has_coordinates:
        text += " " + t.gettext("(location shared)")
    return text


def topic_name(case: CaseView, gazetteer: Gazetteer) -> str:
    """A topic title: priority, case id and area, within Telegram's 128 characters."""
    place = case.report.place
    area = gazetteer.area(place.area_id) if place.area_id else None
    name = f"{PRIORITY_MARK[case.priority]} P{case.priority.value} · {case.case_id}"
    if area is not None:
        name += f" · {area.name}"
    return name[:MAX_TOPIC_NAME]


def card_text(
    t: Translator, case: CaseView, gazetteer: Gazetteer, timezone: ZoneInfo, *, full: bool = False
) -> str:
    """The ticket card. Minimal (default): what a caseworker needs to act, nothing that identifies anyone.
    Full (BEACON_GROUP_DETAIL=full): also the place text, the reporter's words and who the person is."""
    _ = t.gettext
    report = case.report
    dash = "—"
    lines = [
        f"{PRIORITY_MARK[case.priority]} P{case.priority.value} · "
        + _("Case {case_id}").format(case_id=case.case_id)
    ]
    if case.withdrawn:
        lines.append(_("⚠️ Withdrawn by the reporter. A captor may have forced this: treat the case as open."))
    if case.quarantined:
        lines.append(_("⚠️ Set aside for review: many reports from one account in a short time."))
    reasons = ", ".join(reason_label(t, r) for r in case.reasons) or dash
    lines.append(_("Why: {reasons}").format(reasons=reasons))
    lines.append(_("Reported by: {who}").format(who=reporter_type_label(t, report.reporter_type)))
    lines.append(_("Area: {area}").format(area=area_text(t, case, gazetteer)))
    conditions = "; ".join(condition_label(t, c) for c in sorted(report.conditions)) or dash
    lines.append(_("Conditions: {conditions}").format(conditions=conditions))
    passport = possession_label(t, report.passport) if report.passport else dash
    phone = possession_label(t, report.phone) if report.phone else dash
    lines.append(_("Passport: {passport} · Phone: {phone}").format(passport=passport, phone=phone))
    people = people_label(t, report.people) if report.people else dash
    origins = ", ".join(territory_name(t, code) for code in report.nationalities) or dash
    lines.append(_("People held: {people} · From: {origins}").format(people=people, origins=origins))
    contact = contact_preference_label(t, report.contact)
    lines.append(_("May the team write to the reporter: {contact}").format(contact=contact))
    lines.append(_("Reported: {when}").format(when=format_time(t, case.created_at, timezone)))
    status = status_label(t, case.status)
    if case.closing_reason:
        try:
            status += " (" + closing_reason_label(t, ClosingReason(case.closing_reason)) + ")"
        except ValueError:
            status += f" ({case.closing_reason})"
    lines.append(_("Status: {status}").format(status=status))
    assignee = case.assignee_label or (_("a coordinator") if case.assignee_id is not None else _("nobody"))
    lines.append(_("Assigned to: {assignee}").format(assignee=assignee))
    if case.tags:
        lines.append(_("Tags: {tags}").format(tags=", ".join(case.tags)))
    if case.linked_case_ids:
        cases = ", ".join((*case.linked_case_ids, "…") if case.more_links else case.linked_case_ids)
        lines.append(_("Linked cases: {cases}").format(cases=cases))
    if full:
        lines += _full_details(t, case)
        extras = case.media_count
    else:
        extras = len(case.additions) + case.media_count + (1 if report.details else 0)
    if extras:
        # TRANSLATORS: Free text, photos and voice notes are not shown on the group's card.
        further = t.ngettext(
            "{count} further item (text, photo or voice) kept encrypted",
            "{count} further items (text, photos or voice) kept encrypted",
            extras,
        )
        lines.append(further.format(count=extras))
    return "\n".join(lines)


FULL_TEXT_PREVIEW = 600  # a card stays well under Telegram's 4096 characters


def _full_details(t: Translator, case: CaseView) -> list[str]:
    """The lines only a `full` card shows: place text, the reporter's words (shortened), the person."""
    _ = t.gettext
    report = case.report
    lines = []
    if report.place.details:
        lines.append(_("Place: {text}").format(text=_shorten(report.place.details, 300)))
    if report.details:
        lines.append(_("Report: {text}").format(text=_shorten(report.details, FULL_TEXT_PREVIEW)))
    for addition in case.additions[-3:]:
        lines.append(_("Added later: {text}").format(text=_shorten(addition, 300)))
    victim = report.victim
    identity = [victim.name, victim.nationality, victim.passport_number]
    if any(identity):
        lines.append(_("Person: {text}").format(text=", ".join(part for part in identity if part)))
    return lines


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_time(t: Translator, moment: datetime, timezone: ZoneInfo) -> str:
    """A date and time in the coordinator's locale and time zone, with the zone named."""
    local = moment.astimezone(timezone)
    return f"{format_datetime(local, 'medium', locale=locale_of(t))} ({timezone.key})"


def notice_text(t: Translator, kind: OutboxKind) -> str:
    """The short line posted in a case's topic when its reporter changes it."""
    _ = t.gettext
    if kind is OutboxKind.WITHDRAWN:
        return _("The reporter withdrew this report. A captor may have forced this: treat the case as open.")
    return _("The reporter added information. The card above is up to date.")


def digest_text(t: Translator, cases: Sequence[CaseView], gazetteer: Gazetteer) -> str:
    """One message announcing several lower-priority cases during a burst."""
    header = t.ngettext(
        "{count} lower-priority case arrived at the same time; its topic is opened below:",
        "{count} lower-priority cases arrived at the same time; their topics are opened below:",
        len(cases),
    ).format(count=len(cases))
    lines = [header]
    for case in cases:
        area = gazetteer.area(case.report.place.area_id) if case.report.place.area_id else None
        reasons = ", ".join(reason_label(t, r) for r in case.reasons[:3]) or "—"
        where = area.name if area is not None else "—"
        lines.append(
            f"{PRIORITY_MARK[case.priority]} P{case.priority.value} · {case.case_id} · {where} · {reasons}"
        )
    return "\n".join(lines)


def operator_alert_text(t: Translator, case_id: str) -> str:
    return t.gettext(
        "Beacon could not deliver the alert for case {case_id} to the coordinators' group. "
        "Check that the bot is still an administrator there."
    ).format(case_id=case_id)


# --- buttons ---------------------------------------------------------------------------------------------
# Callback data "w:<verb>:<case id>[:<argument>]", at most 64 bytes; the server checks everything again.
CARD_PREFIX = "w"


def card_button(label: str, verb: str, case_id: str, argument: str = "") -> InlineKeyboardButton:
    data = f"{CARD_PREFIX}:{verb}:{case_id}" + (f":{argument}" if argument else "")
    return InlineKeyboardButton(label, callback_data=data)


def next_status_label(t: Translator, status: CaseStatus) -> str:
    _ = t.gettext
    return {
        CaseStatus.ACKNOWLEDGED: lambda: _("➡️ Acknowledge"),
        CaseStatus.IN_CONTACT: lambda: _("➡️ In contact"),
        CaseStatus.REFERRED: lambda: _("➡️ Referred"),
    }[status]()


def closing_reason_label(t: Translator, reason: ClosingReason) -> str:
    _ = t.gettext
    return {
        ClosingReason.RESCUED: lambda: _("Rescued"),
        ClosingReason.ESCAPED: lambda: _("Escaped"),
        ClosingReason.DUPLICATE: lambda: _("Duplicate"),
        ClosingReason.UNREACHABLE: lambda: _("Unreachable"),
        ClosingReason.FALSE_REPORT: lambda: _("False report"),
        ClosingReason.WITHDRAWN: lambda: _("Withdrawn"),
    }[reason]()


def card_markup(t: Translator, case: CaseView) -> InlineKeyboardMarkup:
    """The card's buttons for the case's current state: claim, move forward, close, details."""
    _ = t.gettext
    cid = case.case_id
    first = [
        card_button(_("🙋 Claim"), "claim", cid)
        if case.assignee_id is None
        else card_button(_("↩️ Unassign"), "unassign", cid),
        card_button(_("🔒 Details"), "details", cid),
    ]
    if case.status is CaseStatus.CLOSED:
        return InlineKeyboardMarkup([first, [card_button(_("🔁 Reopen"), "status", cid, "acknowledged")]])
    second = []
    following = FORWARD.get(case.status)
    if following is not None and following is not CaseStatus.CLOSED:
        second.append(card_button(next_status_label(t, following), "status", cid, following.value))
    second.append(card_button(_("✖️ Close…"), "close", cid))
    return InlineKeyboardMarkup([first, second])


def closing_markup(t: Translator, case_id: str) -> InlineKeyboardMarkup:
    """The closing reasons, shown in place of the card's buttons after "Close…"."""
    reasons = [card_button(closing_reason_label(t, r), "reason", case_id, r.value) for r in ClosingReason]
    rows = [reasons[i : i + 2] for i in range(0, len(reasons), 2)]
    rows.append([card_button(t.gettext("Cancel"), "cancel", case_id)])
    return InlineKeyboardMarkup(rows)
