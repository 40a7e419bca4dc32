"""The reporter's conversation as data: which step comes next and how each answer changes the draft.

Pure functions over a JSON-able dict (the draft lives in encrypted, persisted `user_data`), so the
whole flow can be tested without Telegram. Handlers render questions and call `apply_*` here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from babel import Locale, UnknownLocaleError

from bot.domain.models import (
    MAX_FREE_TEXT,
    AgeBand,
    Condition,
    ContactPreference,
    PeopleCount,
    Place,
    Possession,
    Report,
    ReporterType,
    Sex,
    VictimDetails,
)
from bot.i18n import get_translator

Draft = dict[str, Any]


class Step(StrEnum):
    """Each question of the conversation; the value is what `user_data` stores."""

    DANGER = "danger"
    FAST_WHERE = "fast_where"
    FAST_LINE = "fast_line"
    FAST_MORE = "fast_more"
    WHO = "who"
    VICTIM_ASK = "victim_ask"
    VICTIM_NAME = "v_name"
    VICTIM_AGE = "v_age"
    VICTIM_SEX = "v_sex"
    VICTIM_NATIONALITY = "v_nat"
    VICTIM_PASSPORT = "v_passport"
    VICTIM_HANDLE = "v_handle"
    VICTIM_PHOTO = "v_photo"
    VICTIM_LAST_CONTACT = "v_last"
    WHERE = "where"
    AREA = "area"
    PLACE_DETAILS = "place"
    PASSPORT = "passport"
    PHONE = "phone"
    CONDITIONS = "conditions"
    PEOPLE = "people"
    NATIONALITIES = "nats"
    DETAILS = "details"
    CONTACT = "contact"
    REVIEW = "review"
    RECEIPT = "receipt"
    ADD = "add"
    WITHDRAW = "withdraw"


# The main flow after the danger question, in order. The victim's details sit between WHO and WHERE.
FLOW: tuple[Step, ...] = (
    Step.WHO,
    Step.VICTIM_ASK,
    Step.WHERE,
    Step.PLACE_DETAILS,
    Step.PASSPORT,
    Step.PHONE,
    Step.CONDITIONS,
    Step.PEOPLE,
    Step.NATIONALITIES,
    Step.DETAILS,
    Step.CONTACT,
    Step.REVIEW,
)
VICTIM_FLOW: tuple[Step, ...] = (
    Step.VICTIM_NAME,
    Step.VICTIM_AGE,
    Step.VICTIM_SEX,
    Step.VICTIM_NATIONALITY,
    Step.VICTIM_PASSPORT,
    Step.VICTIM_HANDLE,
    Step.VICTIM_PHOTO,
    Step.VICTIM_LAST_CONTACT,
)
# Review's "change" buttons: which step each section starts at.
SECTIONS: dict[str, Step] = {
    "who": Step.WHO,
    "victim": Step.VICTIM_NAME,
    "where": Step.WHERE,
    "docs": Step.PASSPORT,
    "conditions": Step.CONDITIONS,
    "people": Step.PEOPLE,
    "details": Step.DETAILS,
    "contact": Step.CONTACT,
}
# When changing a section from the review, these steps end the section and lead back to the review.
SECTION_ENDS: frozenset[Step] = frozenset(
    {
        Step.WHO,
        Step.VICTIM_LAST_CONTACT,
        Step.PLACE_DETAILS,
        Step.PHONE,
        Step.CONDITIONS,
        Step.NATIONALITIES,
        Step.DETAILS,
        Step.CONTACT,
    }
)
COMMON_NATIONALITIES: tuple[str, ...] = (
    "CN", "VN", "ID", "TH", "MM", "LA", "KH", "PH", "MY", "IN", "BD", "NP", "LK", "PK", "KR", "JP",
    "TW", "UG", "KE", "ET",
)  # fmt: skip
LAST_CONTACT_DAYS: dict[str, int] = {"today": 0, "week": 7, "month": 30, "longer": 90}
MAX_MEDIA = 10
MAX_NATIONALITIES = 30
MAX_NATIONALITY_TEXT = 60


def new_draft(language: str) -> Draft:
    """An empty draft for a new report in `language`."""
    return {"report": Report(language=language).model_dump(mode="json"), "media": [], "back_to_review": False}


def report_of(draft: Draft) -> Report:
    """The draft as a validated Report."""
    return Report.model_validate(draft["report"])


def _set(draft: Draft, **fields: Any) -> None:
    draft["report"] = report_of(draft).model_copy(update=fields).model_dump(mode="json")


def _set_place(draft: Draft, **fields: Any) -> None:
    place = report_of(draft).place.model_copy(update=fields)
    _set(draft, place=Place.model_validate(place.model_dump()))


def _set_victim(draft: Draft, **fields: Any) -> None:
    victim = report_of(draft).victim.model_copy(update=fields)
    _set(draft, victim=VictimDetails.model_validate(victim.model_dump()))


def next_step(draft: Draft, current: Step) -> Step:
    """The step after `current`: back to the review when a section was being changed."""
    if draft.get("back_to_review") and current in SECTION_ENDS:
        draft["back_to_review"] = False
        return Step.REVIEW
    if current in VICTIM_FLOW:
        index = VICTIM_FLOW.index(current)
        return VICTIM_FLOW[index + 1] if index + 1 < len(VICTIM_FLOW) else Step.WHERE
    if current is Step.AREA:
        return Step.PLACE_DETAILS
    if current in FLOW:
        index = FLOW.index(current)
        return FLOW[index + 1] if index + 1 < len(FLOW) else Step.REVIEW
    return Step.REVIEW


def clip(text: str) -> str:
    """Keep free text whole up to the domain limit (a longer text is refused before it gets here)."""
    return text[:MAX_FREE_TEXT]


def append_text(existing: str | None, text: str) -> str:
    """Join several messages of free text with a blank line."""
    return clip(f"{existing}\n\n{text}" if existing else text)


# ------------------------------------------------------------------------------------------- choices
# Each returns the next step, or None when the value is not a valid choice for that step.


def apply_choice(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    """Apply a button's value at `step`; return the next step or None when the value is invalid."""
    handler = _CHOICES.get(step)
    if handler is None:
        return None
    following: Step | None = handler(draft, step, value, today)
    return following


def _danger(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value == "yes":
        _set(draft, immediate_danger=True, fast_track=True)
        return Step.FAST_WHERE
    if value in ("no", "skip"):
        _set(draft, immediate_danger=False if value == "no" else None)
        return Step.WHO
    return None


def _who(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value == "skip":
        return next_step(draft, step)
    try:
        _set(draft, reporter_type=ReporterType(value))
    except ValueError:
        return None
    return next_step(draft, step)


def _victim_ask(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value == "yes":
        return Step.VICTIM_NAME
    if value in ("no", "skip"):
        return next_step(draft, step)
    return None


ChoiceHandler = Callable[[Draft, Step, str, date], Step | None]


def _enum_field(field: str, enum: type[StrEnum], *, victim: bool = False) -> ChoiceHandler:
    def apply(draft: Draft, step: Step, value: str, today: date) -> Step | None:
        if value != "skip":
            try:
                parsed = enum(value)
            except ValueError:
                return None
            (_set_victim if victim else _set)(draft, **{field: parsed})
        return next_step(draft, step)

    return apply


def _victim_nationality(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value != "skip":
        if value not in COMMON_NATIONALITIES:
            return None
        _set_victim(draft, nationality=value)
    return next_step(draft, step)


def _skip_only(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    return next_step(draft, step) if value in ("skip", "done") else None


def _last_contact(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value in ("skip", "unknown"):
        return next_step(draft, step)
    days = LAST_CONTACT_DAYS.get(value)
    if days is None:
        return None
    _set_victim(draft, last_contact=today - timedelta(days=days))
    return next_step(draft, step)


def _where(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value == "unknown":
        _set_place(draft, unknown=True)
        return next_step(draft, step)
    if value == "skip":
        return next_step(draft, step)
    if value.startswith("c-") and len(value) == 4 and value[2:].isalpha():
        _set_place(draft, country=value[2:].upper(), area_id=None, unknown=False)
        return Step.AREA
    return None


def _area(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    # The handler checks the id against the gazetteer before calling this; "other" keeps the country only.
    if value not in ("other", "skip"):
        _set_place(draft, area_id=value)
    return next_step(draft, step)


def _conditions(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value in ("done", "skip"):
        return next_step(draft, step)
    try:
        condition = Condition(value)
    except ValueError:
        return None
    chosen = set(report_of(draft).conditions)
    chosen.symmetric_difference_update({condition})
    _set(draft, conditions=frozenset(chosen))
    return step  # stay: more can be ticked


def _nationalities(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value in ("done", "skip"):
        return next_step(draft, step)
    if value not in COMMON_NATIONALITIES:
        return None
    chosen = list(report_of(draft).nationalities)
    if value in chosen:
        chosen.remove(value)
    else:
        chosen.append(value)
    _set(draft, nationalities=tuple(chosen))
    return step


def _review(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    section = SECTIONS.get(value)
    if section is None:
        return None
    draft["back_to_review"] = True
    return section


def _fast_more(draft: Draft, step: Step, value: str, today: date) -> Step | None:
    if value == "continue":
        return Step.WHO
    return None


_CHOICES: dict[Step, ChoiceHandler] = {
    Step.DANGER: _danger,
    Step.FAST_MORE: _fast_more,
    Step.WHO: _who,
    Step.VICTIM_ASK: _victim_ask,
    Step.VICTIM_NAME: _skip_only,
    Step.VICTIM_AGE: _enum_field("age_band", AgeBand, victim=True),
    Step.VICTIM_SEX: _enum_field("sex", Sex, victim=True),
    Step.VICTIM_NATIONALITY: _victim_nationality,
    Step.VICTIM_PASSPORT: _skip_only,
    Step.VICTIM_HANDLE: _skip_only,
    Step.VICTIM_PHOTO: _skip_only,
    Step.VICTIM_LAST_CONTACT: _last_contact,
    Step.WHERE: _where,
    Step.AREA: _area,
    Step.PLACE_DETAILS: _skip_only,
    Step.PASSPORT: _enum_field("passport", Possession),
    Step.PHONE: _enum_field("phone", Possession),
    Step.CONDITIONS: _conditions,
    Step.PEOPLE: _enum_field("people", PeopleCount),
    Step.NATIONALITIES: _nationalities,
    Step.DETAILS: _skip_only,
    Step.CONTACT: _enum_field("contact", ContactPreference),
    Step.REVIEW: _review,
}


# ------------------------------------------------------------------------------------------- text


TEXT_STEPS: frozenset[Step] = frozenset(
    {
        Step.FAST_WHERE,
        Step.FAST_LINE,
        Step.VICTIM_NAME,
        Step.VICTIM_PASSPORT,
        Step.VICTIM_HANDLE,
        Step.WHERE,
        Step.AREA,
        Step.PLACE_DETAILS,
        Step.NATIONALITIES,
        Step.DETAILS,
    }
)


def nationality_code(text: str, language: str) -> str | None:
    """The ISO 3166-1 alpha-2 code that `text` names: a code ("vn") or a country's name in `language` or
    English ("Việt Nam", "Vietnam"), compared without case; None when it names no country."""
    wanted = text.strip().casefold()
    for locale in (language, "en"):
        try:
            names = Locale.parse(locale).territories
        except (UnknownLocaleError, ValueError):
            continue
        for code, name in names.items():
            if len(code) == 2 and code.isalpha() and wanted in (code.casefold(), str(name).casefold()):
                return str(code)
    return None


def apply_text(draft: Draft, step: Step, text: str) -> Step | None:
    """Apply typed text at `step`; return the next step, or None when this step does not take text."""
    text = text.strip()
    if not text or step not in TEXT_STEPS:
        return None
    if step is Step.FAST_WHERE:
        _set_place(draft, details=clip(text), unknown=False)
        return Step.FAST_LINE
    if step is Step.FAST_LINE:
        _set(draft, details=clip(text))
        return Step.FAST_MORE
    if step is Step.VICTIM_NAME:
        _set_victim(draft, name=text[:500])
    elif step is Step.VICTIM_PASSPORT:
        _set_victim(draft, passport_number=text[:100])
    elif step is Step.VICTIM_HANDLE:
        _set_victim(draft, handle=text[:500])
    elif step in (Step.WHERE, Step.AREA, Step.PLACE_DETAILS):
        # A typed place at WHERE or AREA is the place's description, and it answers the details question too.
        _set_place(draft, details=append_text(report_of(draft).place.details, text), unknown=False)
        if step is not Step.PLACE_DETAILS:
            return next_step(draft, Step.PLACE_DETAILS)
    elif step is Step.DETAILS:
        _set(draft, details=append_text(report_of(draft).details, text))
        return step  # more messages may follow until "Done"
    elif step is Step.NATIONALITIES:
        # Nationalities without a button, typed and separated by commas. A country named (or its code)
        # becomes its code; anything else is the reporter's own words, which are stored only encrypted,
        # so it joins the details instead of the codes (kept in clear, shown on cards and exported).
        report = report_of(draft)
        chosen = list(report.nationalities)
        words: list[str] = []
        for part in (part.strip() for part in text.replace("、", ",").split(",")):
            code = nationality_code(part, report.language) if len(part) <= MAX_NATIONALITY_TEXT else None
            if code is not None:
                chosen.append(code)
            elif part:
                words.append(part)
        _set(draft, nationalities=tuple(chosen[:MAX_NATIONALITIES]))
        if words:
            said = get_translator(report.language).gettext("From: {answer}").format(answer=", ".join(words))
            _set(draft, details=append_text(report.details, said))
        return step
    return next_step(draft, step)


LOCATION_STEPS: frozenset[Step] = frozenset({Step.FAST_WHERE, Step.WHERE, Step.AREA})


def apply_location(
    draft: Draft, step: Step, latitude: float, longitude: float, area: tuple[str, str] | None
) -> Step | None:
    """Apply a shared location (with the nearest gazetteer area, if any); None if the step takes none."""
    if step not in LOCATION_STEPS:
        return None
    country, area_id = area if area else (None, None)
    _set_place(draft, latitude=latitude, longitude=longitude, country=country, area_id=area_id, unknown=False)
    if step is Step.FAST_WHERE:
        return Step.FAST_LINE
    return next_step(draft, Step.AREA)


MEDIA_STEPS: frozenset[Step] = frozenset({Step.DETAILS, Step.VICTIM_PHOTO, Step.ADD})


def apply_media(draft: Draft, step: Step, kind: str, file_id: str) -> Step | None:
    """Remember a photo or voice note to fetch and sanitise at submission; None if the step takes none."""
    if step not in MEDIA_STEPS or (step is Step.VICTIM_PHOTO and kind != "photo"):
        return None
    media = draft.setdefault("media", [])
    if len(media) >= MAX_MEDIA:
        return step
    media.append({"kind": kind, "file_id": file_id})
    return next_step(draft, step) if step is Step.VICTIM_PHOTO else step
