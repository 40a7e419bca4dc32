"""The review screen: every answer in the reader's language, with buttons to change a section or submit."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from bot.domain.gazetteer import Gazetteer
from bot.domain.models import Report
from bot.i18n import Translator
from handlers.intake.draft import Draft, Step, report_of
from handlers.intake.questions import (
    Question,
    age_label,
    area_label,
    button,
    condition_label,
    contact_label,
    people_label,
    possession_label,
    reporter_label,
    sex_label,
    territory_name,
)

# Free text is kept whole; the review shows its beginning so the message stays well under Telegram's limit.
PREVIEW_CHARS = 300


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The first `limit` characters of `text`, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _place(t: Translator, report: Report, gazetteer: Gazetteer) -> str:
    _ = t.gettext
    parts: list[str] = []
    place = report.place
    if place.area_id and (area := gazetteer.area(place.area_id)) is not None:
        parts.append(area_label(t, area))
    if place.country:
        parts.append(territory_name(t, place.country))
    if place.has_coordinates:
        parts.append(_("location shared"))
    if place.details:
        parts.append(shorten(place.details, 120))
    if place.unknown and not parts:
        return _("I don't know")
    return ", ".join(parts) if parts else "—"


def summary(t: Translator, draft: Draft, gazetteer: Gazetteer, media_count: int) -> str:
    """The review text: one line per answer, "—" where a question was skipped."""
    _ = t.gettext
    report = report_of(draft)
    dash = "—"
    lines = [_("Please check your report:"), ""]
    lines.append(
        _("Report about: {answer}").format(
            answer=reporter_label(t, report.reporter_type) if report.reporter_type else dash
        )
    )
    if report.immediate_danger:
        lines.append(_("Danger now: yes"))
    victim = report.victim
    if not victim.is_empty:
        facts = [
            victim.name or "",
            age_label(t, victim.age_band) if victim.age_band else "",
            sex_label(t, victim.sex) if victim.sex else "",
            territory_name(t, victim.nationality) if victim.nationality else "",
            _("passport number given") if victim.passport_number else "",
            _("contact given") if victim.handle else "",
        ]
        lines.append(_("Person: {answer}").format(answer=", ".join(f for f in facts if f)))
    lines.append(_("Where: {answer}").format(answer=_place(t, report, gazetteer)))
    passport = possession_label(t, report.passport) if report.passport else dash
    phone = possession_label(t, report.phone) if report.phone else dash
    lines.append(_("Passport: {answer}").format(answer=passport))
    lines.append(_("Phone: {answer}").format(answer=phone))
    conditions = "; ".join(condition_label(t, c) for c in sorted(report.conditions)) or dash
    lines.append(_("What is happening: {answer}").format(answer=conditions))
    people = people_label(t, report.people) if report.people else dash
    lines.append(_("People held there: {answer}").format(answer=people))
    if report.nationalities:
        names = ", ".join(territory_name(t, code) for code in report.nationalities)
        lines.append(_("From: {answer}").format(answer=names))
    details = shorten(report.details) if report.details else dash
    lines.append(_("Details: {answer}").format(answer=details))
    if media_count:
        lines.append(
            t.ngettext("{count} photo or voice note", "{count} photos or voice notes", media_count).format(
                count=media_count
            )
        )
    contact = contact_label(t, report.contact) if report.contact else dash
    lines.append(_("We may write to you: {answer}").format(answer=contact))
    return "\n".join(lines)


def review_question(t: Translator, draft: Draft, gazetteer: Gazetteer) -> Question:
    """The review screen with Submit and one Change button per section."""
    _ = t.gettext
    step = Step.REVIEW
    change = [
        button(step, "who", _("Change: who it is about")),
        button(step, "victim", _("Change: person")),
        button(step, "where", _("Change: where")),
        button(step, "docs", _("Change: passport, phone")),
        button(step, "conditions", _("Change: what is happening")),
        button(step, "people", _("Change: people")),
        button(step, "details", _("Change: details")),
        button(step, "contact", _("Change: contact")),
    ]
    keyboard = [[button(step, "submit", _("✅ Send the report"))]]
    keyboard += [change[i : i + 2] for i in range(0, len(change), 2)]
    media_count = len(draft.get("media", []))
    return Question(summary(t, draft, gazetteer, media_count), InlineKeyboardMarkup(keyboard))
