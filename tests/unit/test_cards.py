"""Ticket cards: minimal by default (nothing identifying), full only when the deployer asks for it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain.gazetteer import load_gazetteer
from bot.domain.models import (
    CaseStatus,
    Condition,
    ContactPreference,
    Place,
    Possession,
    Priority,
    Reason,
    Report,
    ReporterType,
    VictimDetails,
)
from bot.domain.records import CaseView
from bot.i18n import get_translator
from handlers.coordinators.cards import card_markup, card_text, topic_name

GAZETTEER = load_gazetteer()
MARKERS = ("ZQPLACE-1", "ZQWORDS-2", "ZQNAME-3", "ZQPASS-4", "ZQADDED-5")


def case(**changes: object) -> CaseView:
    report = Report(
        reporter_type=ReporterType.RELATIVE,
        place=Place(country="KH", area_id="kh-poipet", latitude=13.65, longitude=102.56, details=MARKERS[0]),
        passport=Possession.TAKEN,
        conditions=frozenset({Condition.LOCKED_IN, Condition.VIOLENCE}),
        details=MARKERS[1],
        contact=ContactPreference.YES,
        victim=VictimDetails(name=MARKERS[2], passport_number=MARKERS[3]),
        language="vi",
    )
    fields: dict[str, object] = {
        "case_id": "K7MX-Q9PT",
        "created_at": datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
        "status": CaseStatus.NEW,
        "priority": Priority.P2,
        "reasons": (Reason.VIOLENCE, Reason.CONFINEMENT),
        "report": report,
        "withdrawn": False,
        "quarantined": False,
        "linked_case_ids": (),
        "additions": (MARKERS[4],),
        "media_count": 1,
        "contact_chat_id": 987654321,
    }
    fields.update(changes)
    return CaseView.model_validate(fields)


def test_a_minimal_card_shows_what_is_needed_to_act_and_nothing_identifying():
    """Priority, reasons, area and conditions are shown; free text, place text, identity, chat id are not."""
    text = card_text(get_translator("en"), case(), GAZETTEER, ZoneInfo("Asia/Phnom_Penh"))
    assert text.startswith("🟠 P2 · Case K7MX-Q9PT")
    assert "Why: violence, confinement" in text
    assert "Area: Poipet, Cambodia (location shared)" in text
    assert "Nov 28, 2026, 10:00:00" in text, "03:00 UTC shown in the coordinators' zone"
    assert "(Asia/Phnom_Penh)" in text
    for secret in (*MARKERS, "987654321", "13.65", "102.56"):
        assert secret not in text
    assert "3 further items" in text


def test_a_full_card_adds_the_details_but_never_the_chat_id_or_exact_point():
    """The full level adds place text, words, additions and identity; never the chat id or exact point."""
    text = card_text(get_translator("en"), case(), GAZETTEER, ZoneInfo("UTC"), full=True)
    for marker in MARKERS:
        assert marker in text
    for secret in ("987654321", "13.65", "102.56"):
        assert secret not in text


def test_a_withdrawn_case_warns_that_a_captor_may_have_forced_it():
    """A withdrawn case's card says so and asks to treat it as open."""
    text = card_text(get_translator("en"), case(withdrawn=True), GAZETTEER, ZoneInfo("UTC"))
    assert "Withdrawn by the reporter" in text


def test_card_buttons_follow_the_status_and_fit_telegram_limits():
    """A new case offers claim, details, the next status and close; every callback is at most 64 bytes."""
    markup = card_markup(get_translator("en"), case())
    data = [button.callback_data for row in markup.inline_keyboard for button in row]
    assert data == [
        "w:claim:K7MX-Q9PT",
        "w:details:K7MX-Q9PT",
        "w:status:K7MX-Q9PT:acknowledged",
        "w:close:K7MX-Q9PT",
    ]
    assert all(len(str(d).encode()) <= 64 for d in data)
    closed = card_markup(get_translator("en"), case(status=CaseStatus.CLOSED))
    assert [b.callback_data for row in closed.inline_keyboard for b in row][
        -1
    ] == "w:status:K7MX-Q9PT:acknowledged"


def test_topic_names_carry_priority_case_and_area_within_128_characters():
    """The topic title reads "🟠 P2 · K7MX-Q9PT · Poipet" and never exceeds Telegram's limit."""
    assert topic_name(case(), GAZETTEER) == "🟠 P2 · K7MX-Q9PT · Poipet"
    assert len(topic_name(case(), GAZETTEER)) <= 128
