"""Triage: realistic reports and the priority and reasons a caseworker would expect for each."""

from __future__ import annotations

import re

import pytest

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
from bot.domain.triage import describe_rules, priority_for_score, triage
from bot.domain.triage_rules import FLOORS, RULES, RULES_VERSION

C = Condition
R = Reason
SIHANOUKVILLE = Place(country="KH", area_id="kh-preah-sihanouk", details="Building 382, near the casino")
MYAWADDY = Place(latitude=16.6880, longitude=98.5090, country="MM", area_id="mm-myawaddy")


def report(
    *conditions: Condition,
    who: ReporterType | None = ReporterType.RELATIVE,
    danger: bool | None = False,
    passport: Possession | None = None,
    phone: Possession | None = None,
    people: PeopleCount | None = None,
    place: Place = SIHANOUKVILLE,
    age: AgeBand | None = None,
    fast_track: bool = False,
) -> Report:
    return Report(
        reporter_type=who,
        immediate_danger=danger,
        place=place,
        passport=passport,
        phone=phone,
        conditions=frozenset(conditions),
        people=people,
        victim=VictimDetails(age_band=age),
        fast_track=fast_track,
    )


TAKEN, KEPT, UNKNOWN = Possession.TAKEN, Possession.KEPT, Possession.UNKNOWN

# (report, corroborating cases, expected priority, expected reasons in order)
SCENARIOS = [
    pytest.param(
        report(C.VIOLENCE, passport=TAKEN),
        0,
        Priority.P2,
        (R.VIOLENCE, R.DOCUMENTS_WITHHELD),
        id="mother-says-son-beaten-and-passport-taken-in-sihanoukville",
    ),
    pytest.param(
        report(C.CHILDREN_PRESENT, who=ReporterType.WITNESS, place=MYAWADDY),
        0,
        Priority.P2,
        (R.MINORS_PRESENT,),
        id="witness-saw-children-in-a-compound",
    ),
    pytest.param(
        report(C.LONG_HOURS, who=ReporterType.SELF, passport=KEPT, phone=KEPT),
        0,
        Priority.P3,
        (R.EXCESSIVE_HOURS,),
        id="worker-keeps-her-passport-but-works-16-hour-days",
    ),
    pytest.param(
        Report(immediate_danger=True, fast_track=True, place=Place(details="KK Park, building 7")),
        0,
        Priority.P1,
        (R.IMMEDIATE_DANGER,),
        id="fast-track-danger-report-with-no-other-answers",
    ),
    pytest.param(
        Report(fast_track=True),
        0,
        Priority.P1,
        (R.IMMEDIATE_DANGER,),
        id="fast-track-flag-alone-counts-as-danger",
    ),
    pytest.param(
        Report(place=SIHANOUKVILLE),
        0,
        Priority.P4,
        (),
        id="nothing-but-a-place",
    ),
    pytest.param(Report(), 0, Priority.P4, (), id="every-question-skipped"),
    pytest.param(
        report(who=ReporterType.WITNESS, passport=UNKNOWN, phone=UNKNOWN, people=PeopleCount.UNKNOWN),
        0,
        Priority.P4,
        (),
        id="witness-who-knows-nothing-but-the-place",
    ),
    pytest.param(
        report(C.DEBT_OR_RANSOM),
        0,
        Priority.P2,
        (R.DEBT_OR_RANSOM,),
        id="family-received-a-ransom-demand",
    ),
    pytest.param(
        report(C.SOLD_OR_MOVED, C.LOCKED_IN, who=ReporterType.SELF),
        0,
        Priority.P2,
        (R.CONFINEMENT, R.SOLD_OR_MOVED),
        id="sold-between-companies-and-locked-in",
    ),
    pytest.param(
        report(C.SOLD_OR_MOVED),
        0,
        Priority.P3,
        (R.SOLD_OR_MOVED,),
        id="sold-to-another-company-nothing-else-known",
    ),
    pytest.param(
        report(C.LOCKED_IN, C.FORCED_SCAMMING, people=PeopleCount.HUNDREDS),
        0,
        Priority.P2,
        (R.CONFINEMENT, R.FORCED_CRIMINALITY, R.MANY_PEOPLE),
        id="two-hundred-people-locked-in-and-forced-to-scam",
    ),
    pytest.param(
        report(C.VIOLENCE, C.LOCKED_IN, people=PeopleCount.HUNDREDS, who=ReporterType.WITNESS),
        0,
        Priority.P1,
        (R.VIOLENCE, R.CONFINEMENT, R.MANY_PEOPLE),
        id="two-hundred-people-held-and-beaten",
    ),
    pytest.param(
        report(C.SEXUAL_ABUSE, C.LOCKED_IN, people=PeopleCount.MANY),
        0,
        Priority.P1,
        (R.SEXUAL_ABUSE, R.CONFINEMENT, R.MANY_PEOPLE),
        id="dozens-locked-in-with-sexual-abuse",
    ),
    pytest.param(
        report(C.LOCKED_IN, passport=TAKEN, who=ReporterType.SELF),
        0,
        Priority.P2,
        (R.CONFINEMENT, R.DOCUMENTS_WITHHELD),
        id="passport-seized-and-locked-in",
    ),
    pytest.param(report(C.DECEIVED), 0, Priority.P3, (R.DECEPTION,), id="deceived-about-the-job-only"),
    pytest.param(report(C.SEXUAL_ABUSE), 0, Priority.P2, (R.SEXUAL_ABUSE,), id="sexual-abuse-alone"),
    pytest.param(report(C.VIOLENCE), 0, Priority.P2, (R.VIOLENCE,), id="beaten-nothing-else-known"),
    pytest.param(
        report(C.SEXUAL_ABUSE, C.CHILDREN_PRESENT, who=ReporterType.WITNESS),
        0,
        Priority.P1,
        (R.SEXUAL_ABUSE, R.MINORS_PRESENT),
        id="children-where-sexual-abuse-is-reported",
    ),
    pytest.param(
        report(C.VIOLENCE, C.CHILDREN_PRESENT, who=ReporterType.WITNESS),
        0,
        Priority.P1,
        (R.VIOLENCE, R.MINORS_PRESENT),
        id="children-where-beatings-are-reported",
    ),
    pytest.param(
        report(C.FORCED_SCAMMING, age=AgeBand.UNDER_18),
        0,
        Priority.P2,
        (R.MINORS_PRESENT, R.FORCED_CRIMINALITY),
        id="sixteen-year-old-forced-to-scam",
    ),
    pytest.param(
        report(C.VIOLENCE, C.LOCKED_IN, people=PeopleCount.FEW),
        0,
        Priority.P2,
        (R.VIOLENCE, R.CONFINEMENT),
        id="beaten-and-locked-in-with-a-few-others",
    ),
    pytest.param(report(C.THREATS), 0, Priority.P3, (R.THREATS,), id="threats-to-the-family-only"),
    pytest.param(
        report(who=ReporterType.SELF, passport=KEPT, phone=TAKEN),
        0,
        Priority.P3,
        (R.PHONE_TAKEN,),
        id="phone-taken-passport-kept",
    ),
    pytest.param(
        report(passport=TAKEN, phone=TAKEN),
        0,
        Priority.P3,
        (R.DOCUMENTS_WITHHELD, R.PHONE_TAKEN),
        id="passport-and-phone-taken-nothing-else",
    ),
    pytest.param(
        report(C.FORCED_SCAMMING, passport=TAKEN, phone=TAKEN),
        0,
        Priority.P2,
        (R.DOCUMENTS_WITHHELD, R.FORCED_CRIMINALITY, R.PHONE_TAKEN),
        id="passport-and-phone-taken-and-forced-to-scam",
    ),
    pytest.param(
        report(
            C.DECEIVED,
            C.LOCKED_IN,
            C.FORCED_SCAMMING,
            C.WAGES_WITHHELD,
            C.LONG_HOURS,
            who=ReporterType.SELF,
            passport=TAKEN,
            phone=TAKEN,
        ),
        0,
        Priority.P2,
        (
            R.CONFINEMENT,
            R.DOCUMENTS_WITHHELD,
            R.FORCED_CRIMINALITY,
            R.PHONE_TAKEN,
            R.WAGES_WITHHELD,
            R.EXCESSIVE_HOURS,
            R.DECEPTION,
        ),
        id="typical-compound-without-violence",
    ),
    pytest.param(
        report(
            C.VIOLENCE,
            C.LOCKED_IN,
            C.THREATS,
            C.FORCED_SCAMMING,
            C.DEBT_OR_RANSOM,
            passport=TAKEN,
            phone=TAKEN,
        ),
        0,
        Priority.P1,
        (
            R.VIOLENCE,
            R.DEBT_OR_RANSOM,
            R.CONFINEMENT,
            R.THREATS,
            R.DOCUMENTS_WITHHELD,
            R.FORCED_CRIMINALITY,
            R.PHONE_TAKEN,
        ),
        id="beaten-locked-in-ransomed-threatened-and-stripped-of-documents",
    ),
    pytest.param(
        report(C.NO_FOOD_OR_CARE, C.LOCKED_IN),
        0,
        Priority.P2,
        (R.CONFINEMENT, R.DEPRIVATION),
        id="locked-in-without-food-or-medical-care",
    ),
    pytest.param(
        report(C.DEBT_OR_RANSOM, C.LOCKED_IN),
        0,
        Priority.P2,
        (R.DEBT_OR_RANSOM, R.CONFINEMENT),
        id="locked-in-until-a-ransom-is-paid",
    ),
    pytest.param(
        report(C.VIOLENCE, danger=True),
        0,
        Priority.P1,
        (R.IMMEDIATE_DANGER, R.VIOLENCE),
        id="in-danger-now-and-beaten",
    ),
    pytest.param(
        report(danger=False, who=ReporterType.SELF),
        0,
        Priority.P4,
        (),
        id="not-in-danger-and-nothing-else",
    ),
    pytest.param(
        Report(place=SIHANOUKVILLE),
        2,
        Priority.P3,
        (R.CORROBORATED,),
        id="only-a-place-but-two-other-reports-name-it",
    ),
    pytest.param(
        report(C.LOCKED_IN, passport=TAKEN),
        3,
        Priority.P2,
        (R.CONFINEMENT, R.DOCUMENTS_WITHHELD, R.CORROBORATED),
        id="locked-in-without-passport-and-corroborated",
    ),
    pytest.param(
        report(C.THREATS, C.FORCED_SCAMMING),
        1,
        Priority.P2,
        (R.THREATS, R.FORCED_CRIMINALITY, R.CORROBORATED),
        id="corroboration-lifts-threats-and-scamming-to-p2",
    ),
    pytest.param(
        report(C.VIOLENCE, C.LOCKED_IN, people=PeopleCount.MANY),
        4,
        Priority.P1,
        (R.VIOLENCE, R.CONFINEMENT, R.MANY_PEOPLE, R.CORROBORATED),
        id="mass-detention-with-violence-corroborated",
    ),
    pytest.param(
        report(C.DECEIVED, C.LONG_HOURS, C.WAGES_WITHHELD),
        0,
        Priority.P3,
        (R.WAGES_WITHHELD, R.EXCESSIVE_HOURS, R.DECEPTION),
        id="deceived-underpaid-and-overworked",
    ),
    pytest.param(
        report(C.WAGES_WITHHELD, C.LONG_HOURS, passport=TAKEN),
        0,
        Priority.P2,
        (R.DOCUMENTS_WITHHELD, R.WAGES_WITHHELD, R.EXCESSIVE_HOURS),
        id="three-forced-labour-indicators-together",
    ),
    pytest.param(
        report(people=PeopleCount.MANY, who=ReporterType.WITNESS),
        0,
        Priority.P3,
        (R.MANY_PEOPLE,),
        id="witness-counts-dozens-of-workers-nothing-else",
    ),
    pytest.param(
        report(C.DECEIVED, people=PeopleCount.FEW),
        0,
        Priority.P3,
        (R.DECEPTION,),
        id="a-few-people-is-not-many",
    ),
    pytest.param(
        report(C.THREATS, C.SOLD_OR_MOVED, C.NO_FOOD_OR_CARE),
        0,
        Priority.P2,
        (R.THREATS, R.DEPRIVATION, R.SOLD_OR_MOVED),
        id="threatened-sold-and-starved",
    ),
    pytest.param(
        report(C.THREATS, C.DEBT_OR_RANSOM, phone=TAKEN, who=ReporterType.RELATIVE),
        0,
        Priority.P2,
        (R.DEBT_OR_RANSOM, R.THREATS, R.PHONE_TAKEN),
        id="brother-silent-since-his-phone-was-taken-and-family-threatened-for-ransom",
    ),
    pytest.param(
        report(C.DECEIVED, C.VIOLENCE, C.WAGES_WITHHELD, who=ReporterType.SELF, passport=KEPT),
        0,
        Priority.P2,
        (R.VIOLENCE, R.WAGES_WITHHELD, R.DECEPTION),
        id="escaped-victim-tells-of-beatings-and-unpaid-wages",
    ),
]


@pytest.mark.parametrize(("case", "corroboration", "priority", "reasons"), SCENARIOS)
def test_scenario_gets_the_expected_priority_and_reasons(case, corroboration, priority, reasons):
    """Each realistic report gets the priority and the ordered reasons a caseworker would expect."""
    result = triage(case, corroboration)
    assert (result.priority, result.reasons) == (priority, reasons)


def test_there_are_at_least_thirty_scenarios():
    """The scenario table keeps at least thirty realistic reports."""
    assert len(SCENARIOS) >= 30


def test_corroboration_count_and_rules_version_are_recorded():
    """The triage result records how many cases corroborate it and which rules ranked it."""
    result = triage(report(C.LOCKED_IN), 3)
    assert (result.corroborating_cases, result.rules_version) == (3, RULES_VERSION)


def test_score_is_the_sum_of_the_matched_weights():
    """The score is the sum of the weights of the reasons found."""
    weights = {reason: weight for reason, weight, _ in describe_rules()}
    result = triage(report(C.VIOLENCE, C.DECEIVED, passport=TAKEN), 1)
    assert result.score == sum(weights[reason] for reason in result.reasons)


def test_negative_corroboration_is_refused():
    """A negative corroboration count is a programming error and raises ValueError."""
    with pytest.raises(ValueError, match="corroboration"):
        triage(Report(), -1)


@pytest.mark.parametrize(
    ("score", "priority"),
    [
        (0, Priority.P4),
        (4, Priority.P4),
        (5, Priority.P3),
        (29, Priority.P3),
        (30, Priority.P2),
        (100, Priority.P1),
    ],
)
def test_score_thresholds_map_to_priorities(score, priority):
    """Scores map to P1..P4 at the documented thresholds."""
    assert priority_for_score(score) is priority


def test_every_reason_has_exactly_one_rule_with_a_positive_weight():
    """The table covers every Reason once, with a positive weight."""
    described = describe_rules()
    assert sorted(reason for reason, _, _ in described) == sorted(Reason)
    assert all(weight > 0 for _, weight, _ in described)


def test_rules_are_described_heaviest_first():
    """describe_rules lists rules in the order triage lists reasons: heaviest first."""
    weights = [weight for _, weight, _ in describe_rules()]
    assert weights == sorted(weights, reverse=True)
    assert describe_rules()[0][0] is Reason.IMMEDIATE_DANGER


def test_every_rationale_is_one_sentence_citing_its_source():
    """Each rationale is one sentence citing an ILO indicator, an HTCDS code or an operational reason."""
    for reason, _, rationale in describe_rules():
        assert rationale.endswith("."), reason
        assert len(re.findall(r"[.!?](?:\s|$)", rationale)) == 1, reason
        assert re.search(r"ILO indicator \d+|HTCDS \w+|operational", rationale), reason


def test_floors_are_documented_and_ordered_by_urgency():
    """Every floor has a rationale, and floors go from the most urgent priority down."""
    assert all(floor.rationale for floor in FLOORS)
    priorities = [floor.priority for floor in FLOORS]
    assert priorities == sorted(priorities)
    assert len({rule.reason for rule in RULES}) == len(RULES)


def test_rules_version_looks_like_a_date_and_a_counter():
    """RULES_VERSION is "YYYY-MM-DD.N", bumped whenever the table changes."""
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.\d+", RULES_VERSION)
