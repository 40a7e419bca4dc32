"""The questions a reporter sees, in their language, with their buttons.

Wording rules: calm, short, second person, nothing that would alarm a captor glancing at the phone. A
question is worded for the reporter type: "you" when the person writes about themself, "the person"
otherwise. All text is plain (no parse mode), so nothing a reporter typed can ever become markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.domain.gazetteer import Area, Gazetteer
from bot.domain.models import (
    AgeBand,
    Condition,
    ContactPreference,
    PeopleCount,
    Possession,
    Report,
    ReporterType,
    Sex,
)
from bot.i18n import Translator
from handlers.intake.draft import COMMON_NATIONALITIES, Draft, Step, report_of

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | None
CALLBACK_PREFIX = "s"


@dataclass(frozen=True)
class Question:
    """One screen: the text and its keyboard (inline buttons, or a reply keyboard for sharing a location)."""

    text: str
    markup: Markup


def button(step: Step, value: str, label: str) -> InlineKeyboardButton:
    """An inline button whose callback data names the step it belongs to (stale buttons are detectable)."""
    return InlineKeyboardButton(label, callback_data=f"{CALLBACK_PREFIX}:{step.value}:{value}")


def rows(buttons: Sequence[InlineKeyboardButton], per_row: int) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def locale_of(t: Translator) -> Locale:
    try:
        return Locale.parse(t.locale)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def territory_name(t: Translator, code: str) -> str:
    """A country's name in the reader's language (CLDR via babel), or the code itself."""
    return str(locale_of(t).territories.get(code, code))


def area_label(t: Translator, area: Area) -> str:
    """An area's name for the reader: its local name where the reader's language is an official language
    of the area's country (CLDR via babel; a Khmer reader sees "ភ្នំពេញ"), else the gazetteer's name."""
    if area.local_name and locale_of(t).language in get_official_languages(area.country, de_facto=True):
        return area.local_name
    return area.name


def _is_self(report: Report) -> bool:
    return report.reporter_type is ReporterType.SELF


def skip_label(t: Translator) -> str:
    # TRANSLATORS: Button to skip a question. Every question can be skipped.
    return t.gettext("Skip")


def condition_label(t: Translator, condition: Condition) -> str:
    """Short labels for the conditions list; shared by the question and the review."""
    _ = t.gettext
    labels: dict[Condition, Callable[[], str]] = {
        Condition.LOCKED_IN: lambda: _("Locked in or guarded"),
        Condition.VIOLENCE: lambda: _("Beaten, tortured, shocked"),
        Condition.SEXUAL_ABUSE: lambda: _("Sexual abuse"),
        Condition.THREATS: lambda: _("Threats to the person or family"),
        Condition.FORCED_SCAMMING: lambda: _("Forced to scam people"),
        Condition.DEBT_OR_RANSOM: lambda: _("Ransom or debt to leave"),
        Condition.WAGES_WITHHELD: lambda: _("Wages withheld or fines"),
        Condition.LONG_HOURS: lambda: _("Very long working hours"),
        Condition.NO_FOOD_OR_CARE: lambda: _("No food or medical care"),
        Condition.DECEIVED: lambda: _("Deceived about the job"),
        Condition.SOLD_OR_MOVED: lambda: _("Sold or moved between companies"),
        Condition.CHILDREN_PRESENT: lambda: _("Children are there"),
    }
    return labels[condition]()


def possession_label(t: Translator, value: Possession) -> str:
    _ = t.gettext
    if value is Possession.TAKEN:
        # TRANSLATORS: Answer about a passport or a phone: someone took it away.
        return _("Taken away")
    if value is Possession.KEPT:
        # TRANSLATORS: Answer about a passport or a phone: it was not taken away.
        return _("Not taken")
    return _("I don't know")


def people_label(t: Translator, value: PeopleCount) -> str:
    _ = t.gettext
    return {
        PeopleCount.ONE: lambda: _("Only one person"),
        PeopleCount.FEW: lambda: _("2 to 5"),
        PeopleCount.SEVERAL: lambda: _("6 to 20"),
        PeopleCount.MANY: lambda: _("21 to 100"),
        PeopleCount.HUNDREDS: lambda: _("More than 100"),
        PeopleCount.UNKNOWN: lambda: _("I don't know"),
    }[value]()


def reporter_label(t: Translator, value: ReporterType) -> str:
    _ = t.gettext
    return {
        ReporterType.SELF: lambda: _("Myself"),
        ReporterType.RELATIVE: lambda: _("A relative or friend"),
        ReporterType.WITNESS: lambda: _("Someone I saw"),
    }[value]()


def contact_label(t: Translator, value: ContactPreference) -> str:
    _ = t.gettext
    return {
        ContactPreference.YES: lambda: _("Yes, write to me here"),
        ContactPreference.ON_CHECK_IN: lambda: _("Only when I check with /status"),
        ContactPreference.NO: lambda: _("No"),
    }[value]()


def age_label(t: Translator, value: AgeBand) -> str:
    _ = t.gettext
    return {
        AgeBand.UNDER_18: lambda: _("Under 18"),
        AgeBand.FROM_18_TO_24: lambda: _("18 to 24"),
        AgeBand.FROM_25_TO_34: lambda: _("25 to 34"),
        AgeBand.FROM_35_TO_49: lambda: _("35 to 49"),
        AgeBand.OVER_50: lambda: _("50 or older"),
        AgeBand.UNKNOWN: lambda: _("I don't know"),
    }[value]()


def sex_label(t: Translator, value: Sex) -> str:
    _ = t.gettext
    return {
        Sex.FEMALE: lambda: _("Woman"),
        Sex.MALE: lambda: _("Man"),
        Sex.OTHER: lambda: _("Other"),
        Sex.UNKNOWN: lambda: _("I don't know"),
    }[value]()


def location_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    """A reply keyboard with Telegram's location-sharing button (works in private chats only)."""
    return ReplyKeyboardMarkup(
        [[KeyboardButton(t.gettext("📍 Share my location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def question(step: Step, t: Translator, draft: Draft, gazetteer: Gazetteer) -> Question:
    """The text and buttons for `step`, worded for the draft's reporter type."""
    _ = t.gettext
    report = report_of(draft)
    me = _is_self(report)
    skip = button(step, "skip", skip_label(t))

    if step is Step.DANGER:
        text = _("Is someone in danger right now, for example hurt, or about to be moved or punished?")
        buttons = [button(step, "yes", _("Yes, danger now")), button(step, "no", _("No")), skip]
        return Question(text, InlineKeyboardMarkup([buttons[:1], buttons[1:]]))
    if step is Step.FAST_WHERE:
        text = _(
            "Where? Share a location with the button below, or type the place: city, compound or "
            "building, anything you know."
        )
        return Question(text, location_keyboard(t))
    if step is Step.FAST_LINE:
        return Question(_("In one line: what is happening?"), None)
    if step is Step.FAST_MORE:
        text = _("If you can, answer a few more questions. It helps the team act faster.")
        markup = InlineKeyboardMarkup(
            [[button(step, "continue", _("Continue")), button(step, "stop", _("Not now"))]]
        )
        return Question(text, markup)
    if step is Step.WHO:
        text = _("Who is this report about?")
        choices = [button(step, v.value, reporter_label(t, v)) for v in ReporterType]
        return Question(text, InlineKeyboardMarkup([[c] for c in choices] + [[skip]]))
    if step is Step.VICTIM_ASK:
        text = (
            _(
                "Do you want to tell us who you are: name, age, passport number? It helps an embassy or "
                "rescuers find you after a raid. It is stored encrypted. You can skip."
            )
            if me
            else _(
                "Do you want to tell us who the person is: name, age, passport number? It helps an embassy "
                "or rescuers find them after a raid. It is stored encrypted. You can skip."
            )
        )
        markup = InlineKeyboardMarkup([[button(step, "yes", _("Yes")), button(step, "no", _("No"))]])
        return Question(text, markup)
    if step is Step.VICTIM_NAME:
        text = (
            _("Your full name, as in your passport:")
            if me
            else _("The person's full name, as in the passport:")
        )
        return Question(text, InlineKeyboardMarkup([[skip]]))
    if step is Step.VICTIM_AGE:
        text = _("Your age:") if me else _("The person's age:")
        choices = [button(step, v.value, age_label(t, v)) for v in AgeBand]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 3), [skip]]))
    if step is Step.VICTIM_SEX:
        text = _("Your gender:") if me else _("The person's gender:")
        choices = [button(step, v.value, sex_label(t, v)) for v in Sex]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 2), [skip]]))
    if step is Step.VICTIM_NATIONALITY:
        text = _("Your nationality:") if me else _("The person's nationality:")
        choices = [button(step, code, territory_name(t, code)) for code in COMMON_NATIONALITIES]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 3), [skip]]))
    if step is Step.VICTIM_PASSPORT:
        text = _("Passport number, if you know it:")
        return Question(text, InlineKeyboardMarkup([[skip]]))
    if step is Step.VICTIM_HANDLE:
        text = (
            _("A phone number or messaging account where you can be reached, if any:")
            if me
            else _("The person's own phone number or messaging account, if you know it:")
        )
        return Question(text, InlineKeyboardMarkup([[skip]]))
    if step is Step.VICTIM_PHOTO:
        text = (
            _("A photo of your face can help rescuers recognise you. Send one, or skip.")
            if me
            else _("A photo of the person's face can help rescuers recognise them. Send one, or skip.")
        )
        return Question(text, InlineKeyboardMarkup([[skip]]))
    if step is Step.VICTIM_LAST_CONTACT:
        text = _("When did you last hear from the person?")
        choices = [
            button(step, "today", _("Today")),
            button(step, "week", _("This week")),
            button(step, "month", _("This month")),
            button(step, "longer", _("Longer ago")),
        ]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 2), [skip]]))
    if step is Step.WHERE:
        text = (
            _(
                "Where are you held? Share your location with the button below, choose the country, or "
                "type the place."
            )
            if me
            else _(
                "Where is the person held? Share a location with the button below, choose the country, "
                "or type the place."
            )
        )
        countries = [button(step, f"c-{c.code}", territory_name(t, c.code)) for c in gazetteer.countries()]
        markup = InlineKeyboardMarkup(
            [*rows(countries, 2), [button(step, "unknown", _("I don't know")), skip]]
        )
        return Question(text, markup)
    if step is Step.AREA:
        country = report.place.country or ""
        text = _("Which area?")
        areas = [button(step, a.id, area_label(t, a)) for a in gazetteer.areas_in(country)]
        other = button(step, "other", _("Another place"))
        return Question(text, InlineKeyboardMarkup([*rows(areas, 2), [other, skip]]))
    if step is Step.PLACE_DETAILS:
        text = _(
            "Anything that helps find the place: compound name, building, floor, room, landmarks nearby."
        )
        return Question(text, InlineKeyboardMarkup([[skip]]))
    if step is Step.PASSPORT:
        text = _("Was your passport taken?") if me else _("Was the person's passport taken?")
        choices = [button(step, v.value, possession_label(t, v)) for v in Possession]
        return Question(text, InlineKeyboardMarkup([[c] for c in choices] + [[skip]]))
    if step is Step.PHONE:
        text = _("Was your phone taken?") if me else _("Was the person's phone taken?")
        choices = [button(step, v.value, possession_label(t, v)) for v in Possession]
        return Question(text, InlineKeyboardMarkup([[c] for c in choices] + [[skip]]))
    if step is Step.CONDITIONS:
        text = _("What is happening there? Tap everything that is true, then Done.")
        chosen = report.conditions
        choices = [
            button(step, c.value, ("✅ " if c in chosen else "▫️ ") + condition_label(t, c)) for c in Condition
        ]
        done = button(step, "done", _("Done"))
        return Question(text, InlineKeyboardMarkup([[c] for c in choices] + [[done]]))
    if step is Step.PEOPLE:
        text = _("How many people are held there?")
        choices = [button(step, v.value, people_label(t, v)) for v in PeopleCount]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 2), [skip]]))
    if step is Step.NATIONALITIES:
        text = _(
            "Where are the people held there from? Tap all you know, or type other countries, then Done."
        )
        chosen_codes = set(report.nationalities)
        choices = [
            button(step, code, ("✅ " if code in chosen_codes else "") + territory_name(t, code))
            for code in COMMON_NATIONALITIES
        ]
        return Question(text, InlineKeyboardMarkup([*rows(choices, 3), [button(step, "done", _("Done"))]]))
    if step is Step.DETAILS:
        text = _(
            "Anything else we should know? Write it here, or send photos or voice notes. "
            "Press Done when you have finished."
        )
        return Question(text, InlineKeyboardMarkup([[button(step, "done", _("Done"))]]))
    if step is Step.CONTACT:
        text = _("May our team write to you in this chat?")
        choices = [button(step, v.value, contact_label(t, v)) for v in ContactPreference]
        return Question(text, InlineKeyboardMarkup([[c] for c in choices]))
    raise ValueError(f"no question for step {step}")
