"""The conversation as data: every answer at every step keeps the draft a valid Report."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.models import Condition, Possession, ReporterType
from handlers.intake import draft as flow
from handlers.intake.draft import Step

TODAY = date(2026, 11, 28)
STEPS = list(Step)
VALUES = st.one_of(
    st.sampled_from(["yes", "no", "skip", "done", "unknown", "continue", "c-KH", "c-MM", "other", "submit"]),
    st.sampled_from([c.value for c in Condition]),
    st.sampled_from(list(flow.SECTIONS)),
    st.sampled_from(list(flow.COMMON_NATIONALITIES)),
    st.text(max_size=70),
)
ACTIONS = st.one_of(
    st.tuples(st.just("choice"), st.sampled_from(STEPS), VALUES),
    st.tuples(st.just("text"), st.sampled_from(STEPS), st.text(max_size=300)),
    st.tuples(
        st.just("location"),
        st.sampled_from(STEPS),
        st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
    ),
    st.tuples(st.just("media"), st.sampled_from(STEPS), st.sampled_from(["photo", "voice"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ACTIONS, max_size=40))
def test_any_sequence_of_answers_keeps_a_valid_report(actions):
    """Whatever arrives at whatever step, applying it never raises and the draft stays a valid Report."""
    draft = flow.new_draft("vi")
    for kind, step, value in actions:
        if kind == "choice":
            result = flow.apply_choice(draft, step, value, TODAY)
        elif kind == "text":
            result = flow.apply_text(draft, step, value)
        elif kind == "location":
            result = flow.apply_location(draft, step, value[0], value[1], None)
        else:
            result = flow.apply_media(draft, step, value, "FILE")
        assert result is None or isinstance(result, Step)
        report = flow.report_of(draft)
        assert report.language == "vi"
    assert len(draft["media"]) <= flow.MAX_MEDIA


def test_the_main_flow_visits_every_question_in_order():
    """Skipping everything walks who, victim, where, place, passport, phone, conditions, people,
    nationalities, details, contact, then review."""
    draft = flow.new_draft("en")
    step = flow.apply_choice(draft, Step.DANGER, "no", TODAY)
    visited = []
    while step is not Step.REVIEW:
        assert step is not None
        visited.append(step)
        value = (
            "no"
            if step is Step.VICTIM_ASK
            else "done"
            if step in (Step.CONDITIONS, Step.NATIONALITIES, Step.DETAILS)
            else "skip"
        )
        step = flow.apply_choice(draft, step, value, TODAY) if step is not Step.CONTACT else Step.REVIEW
    assert visited == list(flow.FLOW[:-1])


def test_changing_a_section_from_the_review_returns_to_the_review():
    """After "Change: passport, phone", answering both questions leads back to the review, not onwards."""
    draft = flow.new_draft("en")
    assert flow.apply_choice(draft, Step.REVIEW, "docs", TODAY) is Step.PASSPORT
    assert flow.apply_choice(draft, Step.PASSPORT, "taken", TODAY) is Step.PHONE
    assert flow.apply_choice(draft, Step.PHONE, "kept", TODAY) is Step.REVIEW
    report = flow.report_of(draft)
    assert report.passport is Possession.TAKEN
    assert report.phone is Possession.KEPT


def test_conditions_toggle_on_and_off_and_stay_on_the_question():
    """Tapping a condition twice removes it; the question stays until Done."""
    draft = flow.new_draft("en")
    assert flow.apply_choice(draft, Step.CONDITIONS, "violence", TODAY) is Step.CONDITIONS
    assert flow.apply_choice(draft, Step.CONDITIONS, "locked_in", TODAY) is Step.CONDITIONS
    assert flow.apply_choice(draft, Step.CONDITIONS, "violence", TODAY) is Step.CONDITIONS
    assert flow.report_of(draft).conditions == frozenset({Condition.LOCKED_IN})


def test_a_value_from_another_question_is_refused():
    """A button value that does not belong to the step (forged or stale) changes nothing."""
    draft = flow.new_draft("en")
    before = dict(draft["report"])
    assert flow.apply_choice(draft, Step.WHO, "taken", TODAY) is None
    assert flow.apply_choice(draft, Step.PEOPLE, "relative", TODAY) is None
    assert draft["report"] == before


def test_danger_yes_takes_the_fast_track():
    """Yes to danger marks immediate danger and asks only where, then one line."""
    draft = flow.new_draft("en")
    assert flow.apply_choice(draft, Step.DANGER, "yes", TODAY) is Step.FAST_WHERE
    assert flow.apply_text(draft, Step.FAST_WHERE, "KK Park, building 7") is Step.FAST_LINE
    assert flow.apply_text(draft, Step.FAST_LINE, "They are beating people now") is Step.FAST_MORE
    report = flow.report_of(draft)
    assert report.immediate_danger is True
    assert report.fast_track is True
    assert report.place.details == "KK Park, building 7"


def test_free_text_over_several_messages_is_kept_whole():
    """Details sent in several messages are joined, none lost."""
    draft = flow.new_draft("en")
    flow.apply_text(draft, Step.DETAILS, "first part")
    flow.apply_text(draft, Step.DETAILS, "x" * 4096)
    details = flow.report_of(draft).details
    assert details is not None
    assert details.startswith("first part")
    assert details.endswith("x" * 4096)


def test_reporter_type_words_the_questions():
    """Choosing "myself" records the self reporter type."""
    draft = flow.new_draft("en")
    flow.apply_choice(draft, Step.WHO, "self", TODAY)
    assert flow.report_of(draft).reporter_type is ReporterType.SELF
