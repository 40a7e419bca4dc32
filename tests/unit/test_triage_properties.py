"""Triage properties over arbitrary reports: monotone, danger first, deterministic, explainable."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import (
    AgeBand,
    Condition,
    PeopleCount,
    Place,
    Possession,
    Priority,
    Reason,
    Report,
    ReporterType,
    VictimDetails,
)
from bot.domain.triage import triage
from bot.domain.triage_rules import MANY_PEOPLE_AT_LEAST

places = st.builds(
    Place,
    latitude=st.none() | st.floats(-90, 90),
    longitude=st.none() | st.floats(-180, 180),
    country=st.none() | st.sampled_from(["KH", "MM", "LA"]),
    area_id=st.none() | st.sampled_from(["kh-poipet", "mm-myawaddy"]),
    details=st.none() | st.text(max_size=40),
    unknown=st.booleans(),
)
reports = st.builds(
    Report,
    reporter_type=st.none() | st.sampled_from(ReporterType),
    immediate_danger=st.none() | st.booleans(),
    place=places,
    passport=st.none() | st.sampled_from(Possession),
    phone=st.none() | st.sampled_from(Possession),
    conditions=st.frozensets(st.sampled_from(Condition)),
    people=st.none() | st.sampled_from(PeopleCount),
    victim=st.builds(VictimDetails, age_band=st.none() | st.sampled_from(AgeBand)),
    fast_track=st.booleans(),
)
corroborations = st.integers(0, 50)


def _more_people(report: Report, people: PeopleCount) -> Report:
    current = report.people.at_least if report.people else 0
    return report.model_copy(update={"people": people if people.at_least >= current else report.people})


# Each adds one piece of information that points to exploitation, or leaves the report as it is.
additions: st.SearchStrategy[Callable[[Report], Report]] = st.one_of(
    st.sampled_from(Condition).map(
        lambda condition: lambda r: r.model_copy(update={"conditions": r.conditions | {condition}})
    ),
    st.just(lambda r: r.model_copy(update={"passport": Possession.TAKEN})),
    st.just(lambda r: r.model_copy(update={"phone": Possession.TAKEN})),
    st.just(lambda r: r.model_copy(update={"immediate_danger": True})),
    st.just(lambda r: r.model_copy(update={"victim": VictimDetails(age_band=AgeBand.UNDER_18)})),
    st.sampled_from(PeopleCount).map(lambda people: lambda r: _more_people(r, people)),
)


@given(reports, corroborations, st.lists(additions, min_size=1, max_size=5))
def test_adding_any_indicator_never_lowers_priority(report, corroboration, changes):
    """More conditions, a taken passport or phone, danger, a minor or more people never lower priority."""
    before = triage(report, corroboration)
    for change in changes:
        report = change(report)
    after = triage(report, corroboration)
    assert after.priority <= before.priority  # P1 < P2: a smaller number is more urgent
    assert after.score >= before.score
    assert set(before.reasons) <= set(after.reasons)


@given(reports, corroborations, st.integers(1, 50))
def test_corroboration_never_lowers_priority(report, corroboration, more):
    """More corroborating cases never lower priority; any at all adds the CORROBORATED reason."""
    before = triage(report, corroboration)
    after = triage(report, corroboration + more)
    assert after.priority <= before.priority
    assert Reason.CORROBORATED in after.reasons
    assert after.corroborating_cases == corroboration + more


@given(reports, corroborations)
def test_immediate_danger_is_always_p1(report, corroboration):
    """Whatever else a report says, immediate danger makes it P1 with IMMEDIATE_DANGER first."""
    result = triage(report.model_copy(update={"immediate_danger": True}), corroboration)
    assert result.priority is Priority.P1
    assert result.reasons[0] is Reason.IMMEDIATE_DANGER


@given(reports, corroborations)
def test_triage_is_deterministic(report, corroboration):
    """The same report, even rebuilt from its data, always gets the same triage."""
    rebuilt = Report.model_validate(report.model_dump())
    assert triage(report, corroboration) == triage(report, corroboration) == triage(rebuilt, corroboration)


def _explained(reason: Reason, report: Report, corroboration: int) -> bool:
    """Whether the report itself shows the reason, checked independently of the rules table."""
    ticked = {
        Reason.VIOLENCE: Condition.VIOLENCE,
        Reason.SEXUAL_ABUSE: Condition.SEXUAL_ABUSE,
        Reason.CONFINEMENT: Condition.LOCKED_IN,
        Reason.THREATS: Condition.THREATS,
        Reason.DEBT_OR_RANSOM: Condition.DEBT_OR_RANSOM,
        Reason.FORCED_CRIMINALITY: Condition.FORCED_SCAMMING,
        Reason.DEPRIVATION: Condition.NO_FOOD_OR_CARE,
        Reason.WAGES_WITHHELD: Condition.WAGES_WITHHELD,
        Reason.EXCESSIVE_HOURS: Condition.LONG_HOURS,
        Reason.DECEPTION: Condition.DECEIVED,
        Reason.SOLD_OR_MOVED: Condition.SOLD_OR_MOVED,
    }
    if reason in ticked:
        return ticked[reason] in report.conditions
    return {
        Reason.IMMEDIATE_DANGER: report.immediate_danger is True or report.fast_track,
        Reason.DOCUMENTS_WITHHELD: report.passport is Possession.TAKEN,
        Reason.PHONE_TAKEN: report.phone is Possession.TAKEN,
        Reason.MINORS_PRESENT: Condition.CHILDREN_PRESENT in report.conditions
        or report.victim.age_band is AgeBand.UNDER_18,
        Reason.MANY_PEOPLE: report.people is not None and report.people.at_least >= MANY_PEOPLE_AT_LEAST,
        Reason.CORROBORATED: corroboration > 0,
    }[reason]


@given(reports, corroborations)
def test_reasons_are_unique_and_each_explained_by_the_report(report, corroboration):
    """Each reason appears once, and exactly the reasons the report shows are listed."""
    result = triage(report, corroboration)
    assert len(set(result.reasons)) == len(result.reasons)
    assert set(result.reasons) == {reason for reason in Reason if _explained(reason, report, corroboration)}


@given(reports, corroborations)
def test_a_report_with_no_reasons_is_p4_and_any_reason_lifts_it(report, corroboration):
    """P4 means no indicator at all; a single indicator is at least P3."""
    result = triage(report, corroboration)
    assert (result.priority is Priority.P4) == (result.reasons == ())
