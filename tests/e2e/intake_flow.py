"""Shared pieces of the intake end-to-end tests: a plan of answers, a walker that gives them through the
sandbox as a person would (buttons by their callback data, typed text, photos, voice notes), and
read-back helpers for what Beacon stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.app import get_database
from bot.crypto import Keyring
from bot.domain.gazetteer import load_gazetteer
from bot.domain.models import (
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
from bot.domain.records import CaseView
from bot.i18n import get_translator
from handlers.intake.draft import LAST_CONTACT_DAYS, Step, new_draft
from handlers.intake.questions import question
from storage.cases import CaseStore
from tests.e2e.conftest import Harness
from tests.e2e.reporter import Reporter

JSON = dict[str, Any]
# A receipt code as shown: 16 digits in four groups, like a phone number.
CODE = re.compile(r"(?<!\d)(\d{4}) (\d{4}) (\d{4}) (\d{4})(?!\d)")
GAZETTEER = load_gazetteer()
# Telegram's language_code -> the locale Beacon answers in.
LOCALES = {"en": "en", "vi": "vi", "zh-hans": "zh_Hans"}


@dataclass
class Plan:
    """What a simulated reporter answers at each step; None or empty means "skip"."""

    danger: str = "no"
    reporter_type: str | None = "witness"
    victim: bool = False
    victim_name: str | None = "Tran Thi Mai"  # None: the text questions of the victim are skipped
    victim_age: str = "25-34"
    victim_sex: str = "female"
    victim_nationality: str = "VN"
    victim_passport: str | None = "C1234567"
    victim_handle: str | None = "@mai_contact_here"
    victim_photo: bool = True
    victim_last_contact: str = "week"
    country: str | None = "KH"
    area: str | None = "kh-sen-sok"
    location: tuple[float, float] | None = None  # shared at WHERE instead of choosing a country
    place_text: str | None = "Blue building behind the casino, floor 4"
    passport: str | None = "taken"
    phone: str | None = "taken"
    conditions: tuple[str, ...] = ("locked_in", "forced_scamming")
    untoggled: tuple[str, ...] = ()  # ticked, then unticked again
    people: str | None = "21-100"
    nationalities: tuple[str, ...] = ("VN",)
    details: tuple[str, ...] = ("They work sixteen hours a day.",)
    photos: int = 0
    voices: int = 0
    contact: str = "on_check_in"

    @property
    def media_count(self) -> int:
        return self.photos + self.voices + (1 if self.victim and self.victim_photo else 0)

    def report(self, language: str, today: date) -> Report:
        """The Report Beacon should store for these answers."""
        victim = VictimDetails()
        if self.victim:
            victim = VictimDetails(
                name=self.victim_name,
                age_band=AgeBand(self.victim_age),
                sex=Sex(self.victim_sex),
                nationality=self.victim_nationality,
                passport_number=self.victim_passport,
                handle=self.victim_handle,
                last_contact=today - timedelta(days=LAST_CONTACT_DAYS[self.victim_last_contact]),
            )
        if self.location is not None:
            nearest = GAZETTEER.nearest_area(*self.location)
            place = Place(
                latitude=self.location[0],
                longitude=self.location[1],
                country=nearest.country if nearest else None,
                area_id=nearest.id if nearest else None,
                details=self.place_text,
            )
        else:
            place = Place(
                country=self.country,
                area_id=self.area if self.area not in (None, "other") else None,
                details=self.place_text,
            )
        return Report(
            reporter_type=ReporterType(self.reporter_type) if self.reporter_type else None,
            immediate_danger={"no": False, "skip": None}.get(self.danger),
            place=place,
            passport=Possession(self.passport) if self.passport else None,
            phone=Possession(self.phone) if self.phone else None,
            conditions=frozenset(Condition(c) for c in self.conditions),
            people=PeopleCount(self.people) if self.people else None,
            nationalities=self.nationalities,
            details="\n\n".join(self.details) or None,
            contact=ContactPreference(self.contact),
            victim=victim,
            language=language,
        )


# Everything skipped that can be: the quickest complete report.
QUICK = Plan(
    danger="skip",
    reporter_type=None,
    country=None,
    area=None,
    place_text=None,
    passport=None,
    phone=None,
    conditions=(),
    people=None,
    nationalities=(),
    details=(),
    contact="no",
)


@dataclass
class Walk:
    """One reporter giving the answers of a plan, step by step, waiting for each next question."""

    r: Reporter
    plan: Plan
    questions: dict[str, JSON] = field(default_factory=dict)
    start_message_id: int = 0

    async def begin(self) -> JSON:
        """/start; return the danger question."""
        sent = await self.r.sb.send_text(self.r.user_id, "/start", bot_id=self.r.bot_id)
        self.start_message_id = sent["message"]["message_id"]
        q = await self.r.question_after(Step.DANGER.value, self.start_message_id)
        self.questions[Step.DANGER.value] = q
        return q

    async def until(self, stop: Step, start: Step = Step.DANGER) -> None:
        """Answer from `start` (whose question is showing) until the question for `stop` is showing."""
        step = start
        while step is not stop:
            step = await self.answer(step)

    async def to_review(self, start: Step = Step.DANGER) -> None:
        await self.until(Step.REVIEW, start)

    async def submit(self) -> JSON:
        """Press "Send the report" on the review; return the receipt message."""
        mark = await self.r.last_id()
        await self.r.press(Step.REVIEW.value, "submit", expect_next=False)
        return await self.r.reply_after(mark, lambda m: bool(CODE.search(m.get("text", ""))))

    async def report(self) -> JSON:
        """The whole report from /start to the receipt."""
        await self.begin()
        await self.to_review()
        return await self.submit()

    async def _choose(self, step: Step, value: str, following: Step) -> Step:
        q = await self.r.choose(step.value, value, then=following.value)
        assert q is not None
        self.questions[following.value] = q
        return following

    async def _send(self, following: Step, **content: Any) -> Step:
        mark = await self.r.last_id()
        await self.r.sb.send(self.r.user_id, bot_id=self.r.bot_id, **content)
        self.questions[following.value] = await self.r.question_after(following.value, mark)
        return following

    async def _type_or_skip(self, step: Step, text: str | None, following: Step) -> Step:
        if text:
            return await self._send(following, text=text)
        return await self._choose(step, "skip", following)

    async def answer(self, step: Step) -> Step:
        """Answer the question for `step` as planned; return the step whose question then shows."""
        p, r, s = self.plan, self.r, Step
        if step is s.DANGER:
            return await self._choose(step, p.danger, s.WHO)
        if step is s.WHO:
            return await self._choose(step, p.reporter_type or "skip", s.VICTIM_ASK)
        if step is s.VICTIM_ASK:
            return await self._choose(
                step, "yes" if p.victim else "no", s.VICTIM_NAME if p.victim else s.WHERE
            )
        if step is s.VICTIM_NAME:
            return await self._type_or_skip(step, p.victim_name, s.VICTIM_AGE)
        if step is s.VICTIM_AGE:
            return await self._choose(step, p.victim_age, s.VICTIM_SEX)
        if step is s.VICTIM_SEX:
            return await self._choose(step, p.victim_sex, s.VICTIM_NATIONALITY)
        if step is s.VICTIM_NATIONALITY:
            return await self._choose(step, p.victim_nationality, s.VICTIM_PASSPORT)
        if step is s.VICTIM_PASSPORT:
            return await self._type_or_skip(step, p.victim_passport, s.VICTIM_HANDLE)
        if step is s.VICTIM_HANDLE:
            return await self._type_or_skip(step, p.victim_handle, s.VICTIM_PHOTO)
        if step is s.VICTIM_PHOTO:
            if p.victim_photo:
                return await self._send(s.VICTIM_LAST_CONTACT, photo={})
            return await self._choose(step, "skip", s.VICTIM_LAST_CONTACT)
        if step is s.VICTIM_LAST_CONTACT:
            return await self._choose(step, p.victim_last_contact, s.WHERE)
        if step is s.WHERE:
            if p.location is not None:
                latitude, longitude = p.location
                return await self._send(
                    s.PLACE_DETAILS, location={"latitude": latitude, "longitude": longitude}
                )
            if p.country:
                return await self._choose(step, f"c-{p.country}", s.AREA)
            return await self._choose(step, "skip", s.PLACE_DETAILS)
        if step is s.AREA:
            return await self._choose(step, p.area or "skip", s.PLACE_DETAILS)
        if step is s.PLACE_DETAILS:
            if p.place_text:
                return await self._send(s.PASSPORT, text=p.place_text)
            return await self._choose(step, "skip", s.PASSPORT)
        if step is s.PASSPORT:
            return await self._choose(step, p.passport or "skip", s.PHONE)
        if step is s.PHONE:
            return await self._choose(step, p.phone or "skip", s.CONDITIONS)
        if step is s.CONDITIONS:
            for value in p.untoggled:
                await r.toggle(step.value, value, on=True)
            for value in p.conditions:
                await r.toggle(step.value, value, on=True)
            for value in p.untoggled:
                await r.toggle(step.value, value, on=False)
            return await self._choose(step, "done", s.PEOPLE)
        if step is s.PEOPLE:
            return await self._choose(step, p.people or "skip", s.NATIONALITIES)
        if step is s.NATIONALITIES:
            for code in p.nationalities:
                await r.toggle(step.value, code, on=True)
            return await self._choose(step, "done", s.DETAILS)
        if step is s.DETAILS:
            for text in p.details:
                await r.send(text)
            for _ in range(p.photos):
                await r.send_content(photo={})
            for _ in range(p.voices):
                await r.send_content(voice={"duration": 3})
            return await self._choose(step, "done", s.CONTACT)
        if step is s.CONTACT:
            return await self._choose(step, p.contact, s.REVIEW)
        raise AssertionError(f"the walk does not answer {step}")


async def new_reporter(
    h: Harness, language_code: str = "en", first_name: str = "Reporter", **user: Any
) -> Reporter:
    """A new Telegram account writing to the bot; Telegram's 1 message/s per chat is switched off."""
    await h.sb.set_limits(enabled=False)
    created = await h.sb.create_user(first_name, language_code=language_code, **user)
    return Reporter(h.sb, h.bot_id, created["id"])


def expected_question(step: Step, locale: str, reporter_type: str | None, country: str | None = None) -> str:
    """The text Beacon should show for `step` in `locale`, worded for the reporter type."""
    draft = new_draft(locale)
    draft["report"]["reporter_type"] = reporter_type
    draft["report"]["place"]["country"] = country
    return question(step, get_translator(locale), draft, GAZETTEER).text


def code_in(text: str) -> str:
    """The receipt code's 16 digits in a message."""
    match = CODE.search(text)
    assert match, f"no receipt code in {text!r}"
    return "".join(match.groups())


def today_utc() -> date:
    return datetime.now(UTC).date()


def store(h: Harness) -> CaseStore:
    """The case repository over the running bot's own database connection."""
    return CaseStore(get_database(h.app), Keyring(h.settings.secret_key_bytes()))


async def case_by_receipt(h: Harness, receipt_text: str) -> CaseView:
    cases = store(h)
    case_id = await cases.case_by_receipt(code_in(receipt_text))
    assert case_id is not None, "the receipt code opens no case"
    case = await cases.get_case(case_id)
    assert case is not None
    return case


async def case_ids(h: Harness) -> list[str]:
    rows = await get_database(h.app).execute_fetchall("SELECT id FROM cases ORDER BY created_at")
    return [row[0] for row in rows]


async def step_of(h: Harness, r: Reporter) -> str | None:
    """The step the bot holds for this reporter (its persisted conversation state)."""
    value = h.app.user_data.get(r.user_id, {}).get("step")
    return None if value is None else str(value)


def texts(messages: list[JSON]) -> list[str]:
    return [str(m.get("text") or m.get("caption") or "") for m in messages]


async def outbox_rows(h: Harness) -> list[tuple[str, str]]:
    """Every alert the coordinators are owed or were sent, oldest first: (case id, kind)."""
    rows = await get_database(h.app).execute_fetchall("SELECT case_id, kind FROM outbox ORDER BY id")
    return [(str(r[0]), str(r[1])) for r in rows]


# A point in Sen Sok, a few hundred metres from the gazetteer's centre of the area.
SEN_SOK = (11.5925, 104.8671)


async def fast_track(r: Reporter, line: str, location: tuple[float, float] = SEN_SOK) -> JSON:
    """/start, "danger now", a shared location and one line: a P1 case at once. Returns the receipt."""
    await Walk(r, Plan(danger="yes")).begin()
    mark = await r.last_id()
    await r.press(Step.DANGER.value, "yes", expect_next=False)
    await r.reply_after(mark)
    mark = await r.last_id()
    await r.send_content(location={"latitude": location[0], "longitude": location[1]})
    await r.reply_after(mark, lambda m: m.get("text") == "In one line: what is happening?")
    mark = await r.last_id()
    await r.send(line)
    return await r.reply_after(mark, lambda m: bool(CODE.search(m.get("text", ""))))


async def add_information(r: Reporter, text: str) -> None:
    """/add, one text, Done: the reporter's follow-up is stored."""
    sent = await r.sb.send_text(r.user_id, "/add", bot_id=r.bot_id)
    await r.reply_after(sent["message"]["message_id"])
    await r.send(text)
    mark = await r.last_id()
    await r.press(Step.ADD.value, "done", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Thank you. It was added to your report.")


async def withdraw(r: Reporter) -> None:
    """/delete and confirm: the reporter withdraws their report."""
    sent = await r.sb.send_text(r.user_id, "/delete", bot_id=r.bot_id)
    await r.reply_after(sent["message"]["message_id"])
    mark = await r.last_id()
    await r.press(Step.WITHDRAW.value, "yes", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Your report was withdrawn.")
