"""The triage rules: one versioned table of weighted indicators, score thresholds and hard floors.

How a report gets its priority, as a caseworker would reason about it:

1. **Indicators.** Each rule in `RULES` recognises one thing in the report (a ticked condition, a seized
   passport, many people held, other reports about the same place) and contributes its weight to the score.
   Weights follow severity: violence, sexual abuse and demands for ransom weigh most; deception and long
   hours least; every weight is positive, so telling us more can never lower a priority. Each rule cites the
   ILO forced-labour indicator (ILO, 2012) and the HTCDS code it stands for, or the operational reason.
2. **Thresholds.** The score maps to a priority through `THRESHOLDS`:

   - **P1, act now** (score >= 100): several grave indicators at once.
   - **P2, strong forced-labour indicators** (score >= 30): one grave indicator (violence, sexual abuse, a
     ransom) or several lesser ones together, which the ILO says usually point to forced labour.
   - **P3, some indicators** (score >= 5): anything at all that points to exploitation.
   - **P4, little information**: no indicator at all (a place and nothing else, or no answers).

3. **Floors.** Some combinations must never wait behind a score: `FLOORS` lift the priority to at least a
   given level whatever the weights say. Immediate danger is always P1; violence and confinement together
   with many people is P1 (a mass detention with violence); minors with violence or sexual abuse is P1;
   violence or sexual abuse with confinement, minors on their own, and debt or ransom with confinement are
   at least P2.

Changing anything here changes how cases are ranked: bump `RULES_VERSION` (date, then a counter for that
day), which every `Triage` records, so a coordinator can tell which rules ranked an old case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.domain.models import AgeBand, Condition, Possession, Priority, Reason, Report

RULES_VERSION = "2026-11-28.1"

# The smallest "how many people are held there" that counts as many: the 21-100 range and above.
MANY_PEOPLE_AT_LEAST = 21

Predicate = Callable[[Report, int], bool]


@dataclass(frozen=True)
class Rule:
    """One indicator: when `applies(report, corroborating_cases)` holds, `reason` adds `weight`."""

    reason: Reason
    weight: int
    applies: Predicate
    rationale: str


@dataclass(frozen=True)
class Floor:
    """A hard rule: if each group shares a reason with the report's reasons, priority is at least `priority`.

    Floors look only at reasons already found, so they are monotone: more reasons only trigger more floors.
    """

    name: str
    all_of: tuple[frozenset[Reason], ...]
    priority: Priority
    rationale: str

    def holds(self, reasons: frozenset[Reason]) -> bool:
        """Whether every group shares at least one reason with `reasons`."""
        return all(group & reasons for group in self.all_of)


def _ticked(condition: Condition) -> Predicate:
    def applies(report: Report, corroborating_cases: int) -> bool:
        return condition in report.conditions

    return applies


def _in_danger(report: Report, corroborating_cases: int) -> bool:
    # The fast track is reached only by answering "yes" to the danger question.
    return report.immediate_danger is True or report.fast_track


def _passport_taken(report: Report, corroborating_cases: int) -> bool:
    return report.passport is Possession.TAKEN


def _phone_taken(report: Report, corroborating_cases: int) -> bool:
    return report.phone is Possession.TAKEN


def _minors_present(report: Report, corroborating_cases: int) -> bool:
    return Condition.CHILDREN_PRESENT in report.conditions or report.victim.age_band is AgeBand.UNDER_18


def _many_people(report: Report, corroborating_cases: int) -> bool:
    return report.people is not None and report.people.at_least >= MANY_PEOPLE_AT_LEAST


def _corroborated(report: Report, corroborating_cases: int) -> bool:
    return corroborating_cases > 0


# The table. Its order is also the tie-break order between reasons of equal weight.
RULES: tuple[Rule, ...] = (
    Rule(
        Reason.IMMEDIATE_DANGER,
        100,
        _in_danger,
        "The reporter says someone is in danger right now: operational, a life may depend on the next hour.",
    ),
    Rule(
        Reason.VIOLENCE,
        30,
        _ticked(Condition.VIOLENCE),
        "Beatings, torture or electric shocks are physical violence (ILO indicator 5; HTCDS PhysicalAbuse).",
    ),
    Rule(
        Reason.SEXUAL_ABUSE,
        30,
        _ticked(Condition.SEXUAL_ABUSE),
        "Sexual abuse is sexual violence (ILO indicator 5; HTCDS SexualAbuse) and calls for urgent "
        "protection.",
    ),
    Rule(
        Reason.DEBT_OR_RANSOM,
        30,
        _ticked(Condition.DEBT_OR_RANSOM),
        "A debt or ransom demanded for release is debt bondage (ILO indicator 9; HTCDS DebtBondage) and "
        "means the person is held and the family is being extorted.",
    ),
    Rule(
        Reason.MINORS_PRESENT,
        25,
        _minors_present,
        "Children cannot consent to their exploitation and need child protection (HTCDS UsesChildren; ILO "
        "indicator 1, abuse of vulnerability).",
    ),
    Rule(
        Reason.CONFINEMENT,
        20,
        _ticked(Condition.LOCKED_IN),
        "Being locked in or guarded is restriction of movement (ILO indicator 3; HTCDS RestrictsMovement).",
    ),
    Rule(
        Reason.THREATS,
        15,
        _ticked(Condition.THREATS),
        "Threats to the person or their family are intimidation (ILO indicator 6; HTCDS Threats, "
        "PsychologicalAbuse).",
    ),
    Rule(
        Reason.DOCUMENTS_WITHHELD,
        15,
        _passport_taken,
        "A passport taken by the employer is retention of identity documents (ILO indicator 7; HTCDS "
        "WithholdsDocuments) and prevents escape.",
    ),
    Rule(
        Reason.DEPRIVATION,
        15,
        _ticked(Condition.NO_FOOD_OR_CARE),
        "Denied food or medical care are abusive living conditions (ILO indicator 10; HTCDS "
        "WithholdsNecessities, RestrictsMedicalCare) and can become life-threatening.",
    ),
    Rule(
        Reason.SOLD_OR_MOVED,
        15,
        _ticked(Condition.SOLD_OR_MOVED),
        "Being sold or moved between companies exploits the person's vulnerability (ILO indicator 1; HTCDS "
        "Other) and usually brings a new debt and the risk of losing track of them.",
    ),
    Rule(
        Reason.FORCED_CRIMINALITY,
        10,
        _ticked(Condition.FORCED_SCAMMING),
        "Being forced to scam people is forced criminality (HTCDS IllicitActivities; ILO indicator 10).",
    ),
    Rule(
        Reason.PHONE_TAKEN,
        10,
        _phone_taken,
        "A phone taken away cuts the person off from help (ILO indicator 4, isolation) and may end our "
        "contact.",
    ),
    Rule(
        Reason.WAGES_WITHHELD,
        10,
        _ticked(Condition.WAGES_WITHHELD),
        "Wages withheld or fines are withholding of wages (ILO indicator 8; HTCDS TakesEarnings).",
    ),
    Rule(
        Reason.MANY_PEOPLE,
        10,
        _many_people,
        "Twenty or more people held in one place is operational: any rescue is larger and more people are at "
        "risk.",
    ),
    Rule(
        Reason.CORROBORATED,
        10,
        _corroborated,
        "Other recent reports about the same place make this one more credible and suggest a compound still "
        "in operation: operational.",
    ),
    Rule(
        Reason.EXCESSIVE_HOURS,
        5,
        _ticked(Condition.LONG_HOURS),
        "Very long working hours are excessive overtime (ILO indicator 11; HTCDS ExcessiveWorkingHours).",
    ),
    Rule(
        Reason.DECEPTION,
        5,
        _ticked(Condition.DECEIVED),
        "Being deceived about the job is deception (ILO indicator 2; HTCDS FalsePromises), the usual way "
        "victims are recruited.",
    ),
)

# The lowest score for each priority, most urgent first; below the last one a case is P4.
THRESHOLDS: tuple[tuple[int, Priority], ...] = (
    (100, Priority.P1),
    (30, Priority.P2),
    (5, Priority.P3),
)

_HARMED = frozenset({Reason.VIOLENCE, Reason.SEXUAL_ABUSE})

FLOORS: tuple[Floor, ...] = (
    Floor(
        "danger",
        (frozenset({Reason.IMMEDIATE_DANGER}),),
        Priority.P1,
        "Someone in danger right now always comes first.",
    ),
    Floor(
        "mass-detention-with-violence",
        (_HARMED, frozenset({Reason.CONFINEMENT}), frozenset({Reason.MANY_PEOPLE})),
        Priority.P1,
        "Violence against people locked in by the dozen is an emergency for many at once.",
    ),
    Floor(
        "children-and-abuse",
        (frozenset({Reason.MINORS_PRESENT}), _HARMED),
        Priority.P1,
        "Children where violence or sexual abuse is reported is a child-safeguarding emergency.",
    ),
    Floor(
        "violence-and-confinement",
        (_HARMED, frozenset({Reason.CONFINEMENT})),
        Priority.P2,
        "Violence the person cannot escape from is a strong sign of forced labour.",
    ),
    Floor(
        "minors",
        (frozenset({Reason.MINORS_PRESENT}),),
        Priority.P2,
        "Children in a compound need child protection, whatever else is known.",
    ),
    Floor(
        "ransom-and-confinement",
        (frozenset({Reason.DEBT_OR_RANSOM}), frozenset({Reason.CONFINEMENT})),
        Priority.P2,
        "A payment demanded for the release of someone locked in is extortion in progress.",
    ),
)


def _check_table() -> None:
    """Refuse to import a table that breaks the guarantees triage() relies on."""
    reasons = [rule.reason for rule in RULES]
    if len(set(reasons)) != len(reasons):
        raise ValueError("each reason must have exactly one rule")
    if any(rule.weight <= 0 for rule in RULES):
        raise ValueError("rule weights must be positive, so more information never lowers priority")
    if set(reasons) != set(Reason):
        raise ValueError(f"reasons without a rule: {sorted(set(Reason) - set(reasons))}")
    scores = [score for score, _ in THRESHOLDS]
    priorities = [priority for _, priority in THRESHOLDS]
    if scores != sorted(scores, reverse=True) or priorities != sorted(priorities):
        raise ValueError("thresholds must go from the most urgent priority down")


_check_table()
