"""Triage: a report's priority and the reasons for it, from the rules table in `triage_rules`.

Pure and deterministic: the same report and corroboration count always give the same `Triage`.
"""

from __future__ import annotations

from bot.domain.models import Priority, Reason, Report, Triage
from bot.domain.triage_rules import FLOORS, RULES, RULES_VERSION, THRESHOLDS

# Tie-break between reasons of equal weight: their order in the table.
_TABLE_ORDER = {rule.reason: index for index, rule in enumerate(RULES)}


def priority_for_score(score: int) -> Priority:
    """Return the priority a score earns on its own, before any floor."""
    for lowest, priority in THRESHOLDS:
        if score >= lowest:
            return priority
    return Priority.P4


def triage(report: Report, corroboration: int = 0) -> Triage:
    """Return the report's priority and reasons, given how many earlier cases corroborate it.

    Reasons come heaviest first (ties in table order), each at most once. Corroboration adds the
    CORROBORATED reason and its weight, so it can raise a priority but never lower one.

    Raises ValueError if `corroboration` is negative.
    """
    if corroboration < 0:
        raise ValueError(f"corroboration must be zero or more, not {corroboration}")
    matched = [rule for rule in RULES if rule.applies(report, corroboration)]
    matched.sort(key=lambda rule: (-rule.weight, _TABLE_ORDER[rule.reason]))
    reasons = tuple(rule.reason for rule in matched)
    score = sum(rule.weight for rule in matched)
    found = frozenset(reasons)
    # min(): P1 is the smallest number, so the most urgent of the score's priority and every floor that holds.
    priority = min(
        [priority_for_score(score), *(floor.priority for floor in FLOORS if floor.holds(found))],
    )
    return Triage(
        priority=priority,
        reasons=reasons,
        score=score,
        corroborating_cases=corroboration,
        rules_version=RULES_VERSION,
    )


def describe_rules() -> list[tuple[Reason, int, str]]:
    """Return (reason, weight, rationale) for every rule, in the order triage lists reasons."""
    ordered = sorted(RULES, key=lambda rule: (-rule.weight, _TABLE_ORDER[rule.reason]))
    return [(rule.reason, rule.weight, rule.rationale) for rule in ordered]
