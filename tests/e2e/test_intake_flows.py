"""Complete reports through the real bot and the sandbox, in three languages, for every kind of reporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.domain.triage import triage
from bot.i18n import get_translator
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    CODE,
    LOCALES,
    Plan,
    Walk,
    case_by_receipt,
    case_ids,
    expected_question,
    new_reporter,
    texts,
    today_utc,
)

RECEIPT_PREFIX = "Thank you. It is saved."
# Questions every flow below shows, whose wording is checked in the reporter's language.
CHECKED_STEPS = (
    Step.DANGER,
    Step.WHO,
    Step.VICTIM_ASK,
    Step.WHERE,
    Step.AREA,
    Step.PLACE_DETAILS,
    Step.PASSPORT,
    Step.PHONE,
    Step.CONDITIONS,
    Step.PEOPLE,
    Step.NATIONALITIES,
    Step.DETAILS,
    Step.CONTACT,
)
VICTIM_STEPS = (
    Step.VICTIM_NAME,
    Step.VICTIM_AGE,
    Step.VICTIM_SEX,
    Step.VICTIM_NATIONALITY,
    Step.VICTIM_PASSPORT,
    Step.VICTIM_HANDLE,
    Step.VICTIM_PHOTO,
    Step.VICTIM_LAST_CONTACT,
)


def _plan(reporter_type: str) -> Plan:
    """A full report: victim details (with a photo) for self and relative, several conditions, media."""
    return Plan(
        reporter_type=reporter_type,
        victim=reporter_type in ("self", "relative"),
        country="KH",
        area="kh-preah-sihanouk",
        place_text="Golden Fortune compound, building C, floor 5",
        passport="taken",
        phone="kept" if reporter_type == "witness" else "taken",
        conditions=("locked_in", "violence", "forced_scamming", "debt_or_ransom"),
        untoggled=("long_hours",),
        people="100+",
        nationalities=("VN", "ID", "CN"),
        details=("The guards beat people who do not reach their targets.",),
        photos=1,
        voices=1,
        contact="yes" if reporter_type == "self" else "on_check_in",
    )


@pytest.mark.parametrize("reporter_type", ["self", "relative", "witness"])
@pytest.mark.parametrize("language_code", ["en", "vi", "zh-hans"])
async def test_a_complete_report_is_stored_triaged_and_leaves_only_the_receipt(
    harness: Harness, language_code: str, reporter_type: str
) -> None:
    """A full report in the reporter's language is stored as answered, triaged, and the chat is wiped
    down to the receipt, which can itself be cleared to one neutral line."""
    h = harness
    locale = LOCALES[language_code]
    t = get_translator(locale)
    r = await new_reporter(h, language_code)
    plan = _plan(reporter_type)
    walk = Walk(r, plan)
    await walk.begin()
    await walk.to_review()

    # Before submission the chat holds the whole conversation, both sides.
    before = await r.messages()
    mine = [m for m in before if not m["from"]["is_bot"]]
    assert any(m.get("text") == "/start" for m in mine)
    assert any(m.get("text") == plan.place_text for m in mine)
    assert any(m.get("text") == plan.details[0] for m in mine)
    assert sum(1 for m in mine if "photo" in m) == plan.photos + (1 if plan.victim else 0)
    assert sum(1 for m in mine if "voice" in m) == plan.voices
    assert len([m for m in before if m["from"]["is_bot"]]) >= len(CHECKED_STEPS)

    # Every question was in the reporter's language, worded for the reporter type.
    steps = CHECKED_STEPS + (VICTIM_STEPS if plan.victim else ())
    bot_texts = texts([m for m in before if m["from"]["is_bot"]])
    for step in steps:
        shown = walk.questions[step.value]["text"]
        assert shown == expected_question(step, locale, reporter_type, "KH"), step
        if locale != "en":
            english = expected_question(step, "en", reporter_type, "KH")
            assert english != shown, f"{step} is not translated into {locale}"
            assert not any(english in text for text in bot_texts), (
                f"English {step} shown to a {locale} reader"
            )
    if locale != "en":
        labels = [b["text"] for row in walk.questions["who"]["reply_markup"]["inline_keyboard"] for b in row]
        assert "Skip" not in labels
        assert "Myself" not in labels

    receipt = await walk.submit()
    match = CODE.search(receipt["text"])
    assert match
    assert all(len(group) == 4 for group in match.groups())
    formatted = " ".join(match.groups())
    expected_receipt = t.gettext(_receipt_msgid()).format(code=formatted)
    assert receipt["text"] == expected_receipt
    if locale != "en":
        assert RECEIPT_PREFIX not in receipt["text"]

    # After it, only the receipt remains: everything else was deleted on both sides.
    async def only_receipt() -> bool:
        return [m["message_id"] for m in await r.messages()] == [receipt["message_id"]]

    await h.sb.wait_until(only_receipt)
    transcript = await h.sb.transcript(r.user_id, bot_id=h.bot_id)
    assert transcript["keyboard"] is None, "no location keyboard may stay on the reporter's screen"

    # The stored case is what was answered, triaged like the same Report.
    case = await case_by_receipt(h, receipt["text"])
    expected = plan.report(locale, today_utc())
    assert await case_ids(h) == [case.case_id]
    assert case.report == expected
    assert case.report.reporter_type is not None
    assert case.report.reporter_type.value == reporter_type
    assert {c.value for c in case.report.conditions} == set(plan.conditions)
    assert case.report.place.area_id == "kh-preah-sihanouk"
    assert case.report.language == locale
    assert case.media_count == plan.media_count
    assert case.priority == triage(expected, len(case.linked_case_ids)).priority
    assert case.reasons == triage(expected, len(case.linked_case_ids)).reasons
    assert not case.quarantined
    assert not case.withdrawn
    assert case.contact_chat_id == r.user_id

    # "I wrote it down. Clear this." leaves exactly one neutral line.
    await r.press(Step.RECEIPT.value, "clear", expect_next=False)
    neutral = t.gettext("Thank you.")

    async def one_neutral_line() -> bool:
        return texts(await r.messages()) == [neutral]

    await h.sb.wait_until(one_neutral_line)


def _receipt_msgid() -> str:
    """The receipt's msgid, read from the catalog template (it is one long message)."""
    with (Path(__file__).parents[2] / "locales" / "beacon.pot").open("rb") as template:
        ids = [m.id for m in read_po(template) if isinstance(m.id, str) and m.id.startswith(RECEIPT_PREFIX)]
    assert len(ids) == 1
    return ids[0]
