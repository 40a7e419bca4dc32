"""Case exports: levels, filters, the columns each level may see, and k-anonymity for the public level.

Pure code: knows nothing of Telegram, SQL or file formats. Storage yields ``ExportCase`` records, this
module decides which values of a record a level may carry (``columns_for``) and, for the public level,
how quasi-identifiers are generalised and which records are suppressed (``plan_anonymity``).

Levels:

- ``full`` (admins only): every stored field, free text decrypted. Never the reporter's identity: Beacon
  does not hold it (the chat id kept to write back to a reporter is never exported).
- ``partner``: no free text, no coordinates, no building or place text, area only, dates to the day.
- ``public``: CTDC-style columns, no case ids, k-anonymous over the quasi-identifiers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from bot.domain.models import (
    HTCDS_DOCUMENTS_WITHHELD,
    HTCDS_FORCED_CRIMINALITY,
    HTCDS_METHODS,
    ILO_INDICATORS,
    AgeBand,
    CaseStatus,
    Condition,
    IloIndicator,
    Possession,
    Priority,
)
from bot.domain.workflow import Role

__all__ = [
    "COLUMNS",
    "DEFAULT_K",
    "DEFAULT_MAX_SUPPRESSION",
    "HTCDS_CODES",
    "LEVEL_ROLES",
    "MISSING",
    "QUASI_IDENTIFIERS",
    "AnonymityPlan",
    "Column",
    "ExportCase",
    "ExportFilters",
    "ExportFormat",
    "ExportLevel",
    "ExportSecrets",
    "FilterError",
    "QuasiKey",
    "RowInfo",
    "Value",
    "column_dictionary_markdown",
    "columns_for",
    "may_export",
    "parse_filters",
    "plan_anonymity",
    "quasi_key",
    "quasi_key_of",
    "row_values",
]

# CTDC's marker for a value that is missing, or withheld to keep the public export k-anonymous.
MISSING = -99
DEFAULT_K = 11  # CTDC's k for its public Global Dataset
DEFAULT_MAX_SUPPRESSION = 0.10  # generalise until at most this share of records must be suppressed

Value = str | int | float | bool | None | tuple[str, ...]


class ExportLevel(StrEnum):
    FULL = "full"
    PARTNER = "partner"
    PUBLIC = "public"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    XLSX = "xlsx"
    GEOJSON = "geojson"


# Who may export at each level. The command line is run by whoever holds the deployment's key.
LEVEL_ROLES: Mapping[ExportLevel, frozenset[Role]] = {
    ExportLevel.FULL: frozenset({Role.ADMIN}),
    ExportLevel.PARTNER: frozenset({Role.ADMIN, Role.ANALYST}),
    ExportLevel.PUBLIC: frozenset({Role.ADMIN, Role.ANALYST}),
}


def may_export(role: Role | None, level: ExportLevel) -> bool:
    """Whether a member of staff with ``role`` may export at ``level``."""
    return role is not None and role in LEVEL_ROLES[level]


# Every HTCDS MethodsOfControl code, in the standard's order.
HTCDS_CODES: tuple[str, ...] = (
    "DebtBondage",
    "TakesEarnings",
    "RestrictsFinancialAccess",
    "Threats",
    "PsychologicalAbuse",
    "PhysicalAbuse",
    "SexualAbuse",
    "FalsePromises",
    "PsychoactiveSubstances",
    "RestrictsMovement",
    "RestrictsMedicalCare",
    "ExcessiveWorkingHours",
    "UsesChildren",
    "ThreatOfLawEnforcement",
    "WithholdsNecessities",
    "WithholdsDocuments",
    "Other",
)

# Each condition's HTCDS codes and ILO indicators by its stored value (storage yields conditions as text):
# a dict lookup per condition instead of building an enum member for it, on every row of an export.
_METHODS_OF: dict[str, tuple[str, ...]] = {
    condition.value: HTCDS_METHODS[condition] for condition in Condition
}
_INDICATORS_OF: dict[str, tuple[IloIndicator, ...]] = {
    condition.value: ILO_INDICATORS[condition] for condition in Condition
}


# --- the record storage yields -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportCase:
    """One case as exports see it. ``secrets`` is filled only for the full level (decrypted free text)."""

    case_id: str
    created_at: datetime
    updated_at: datetime
    status: CaseStatus
    priority: Priority
    reasons: tuple[str, ...]
    corroborating_cases: int
    reporter_type: str | None
    immediate_danger: bool | None
    fast_track: bool
    place_unknown: bool
    country: str | None
    area_id: str | None
    passport: str | None
    phone: str | None
    people: str | None
    nationalities: tuple[str, ...]
    contact: str | None
    language: str
    victim_age_band: str | None
    victim_sex: str | None
    victim_nationality: str | None
    quarantined: bool
    withdrawn_at: datetime | None
    closing_reason: str | None
    conditions: frozenset[str]
    linked_case_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    assignee: str | None = None
    media_count: int = 0
    additions_count: int = 0
    secrets: ExportSecrets | None = None

    def htcds_methods(self) -> tuple[str, ...]:
        """HTCDS MethodsOfControl codes the report supports, in the standard's order."""
        codes = {code for name in self.conditions for code in _METHODS_OF.get(name, ())}
        if self.passport == Possession.TAKEN.value:
            codes.add(HTCDS_DOCUMENTS_WITHHELD)
        return tuple(code for code in HTCDS_CODES if code in codes)

    def ilo_indicators(self) -> tuple[str, ...]:
        found = {indicator for name in self.conditions for indicator in _INDICATORS_OF.get(name, ())}
        if self.passport == Possession.TAKEN.value:
            found.add(IloIndicator.RETENTION_OF_IDENTITY_DOCUMENTS)
        if self.phone == Possession.TAKEN.value:
            found.add(IloIndicator.ISOLATION)
        return tuple(str(int(indicator)) for indicator in sorted(found))

    @property
    def forced_criminality(self) -> bool:
        return Condition.FORCED_SCAMMING.value in self.conditions


@dataclass(frozen=True, slots=True)
class ExportSecrets:
    """The decrypted free text of a case (full level only)."""

    latitude: float | None = None
    longitude: float | None = None
    place_details: str | None = None
    details: str | None = None
    victim_name: str | None = None
    victim_passport_number: str | None = None
    victim_handle: str | None = None
    victim_last_contact: str | None = None
    additions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# --- filters -----------------------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter value is not valid; the message says which and what is accepted (one line).

    ``value`` is the piece of input that was not understood (to quote it back in any language).
    """

    def __init__(self, message: str, value: str = "") -> None:
        super().__init__(message)
        self.value = value


@dataclass(frozen=True)
class ExportFilters:
    """Which cases an export covers. Empty sets mean "any". Dates are inclusive days in UTC."""

    since: date | None = None
    until: date | None = None
    statuses: frozenset[CaseStatus] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    countries: frozenset[str] = frozenset()
    areas: frozenset[str] = frozenset()
    # Conditions any of which a case must show; ``documents`` adds "passport taken" to that any-of.
    conditions: frozenset[Condition] = frozenset()
    documents: bool = False
    indicators: tuple[str, ...] = ()  # as given (canonical spelling), for the audit trail

    @property
    def by_indicator(self) -> bool:
        return bool(self.conditions) or self.documents

    def audit_details(self) -> dict[str, str]:
        """Short codes for the audit trail: each filter (or its size when long) and a digest of them all."""
        described = {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "status": ",".join(sorted(status.value for status in self.statuses)),
            "priority": ",".join(str(int(priority)) for priority in sorted(self.priorities)),
            "country": ",".join(sorted(self.countries)),
            "area": ",".join(sorted(self.areas)),
            "indicator": ",".join(self.indicators),
        }
        digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
        short = {
            f"filter_{key}": value if len(value) <= 60 else f"{value.count(',') + 1} values"
            for key, value in described.items()
            if value
        }
        return {**short, "filters_digest": digest}


_STATUS_ALIASES = {"open": (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_CONTACT)}
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _day(name: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(f"{name} must be a date like 2026-01-31, not {value!r}", value) from None


def parse_filters(
    *,
    since: str | None = None,
    until: str | None = None,
    status: Iterable[str] = (),
    priority: Iterable[str] = (),
    country: Iterable[str] = (),
    area: Iterable[str] = (),
    indicator: Iterable[str] = (),
    known_areas: Callable[[str], bool] | None = None,
) -> ExportFilters:
    """Read filters as people type them (comma-separated lists allowed); raise ``FilterError`` if one is off.

    ``status``: new, acknowledged, in_contact, referred, closed or ``open``. ``priority``: 1-4 or P1-P4.
    ``country``: ISO 3166-1 alpha-2 codes. ``area``: gazetteer area ids (checked with ``known_areas``).
    ``indicator``: an HTCDS MethodsOfControl code (e.g. WithholdsDocuments), IllicitActivities, or a
    Beacon condition (e.g. locked_in); a case matches if it shows any of them.
    """
    start, end = _day("since", since), _day("until", until)
    if start and end and start > end:
        raise FilterError(f"since ({start}) is after until ({end})", f"since={start} until={end}")

    statuses: set[CaseStatus] = set()
    for value in _split(status):
        key = value.lower()
        if key in _STATUS_ALIASES:
            statuses.update(_STATUS_ALIASES[key])
        elif key in CaseStatus.__members__.values():
            statuses.add(CaseStatus(key))
        else:
            accepted = ", ".join([*(s.value for s in CaseStatus), *_STATUS_ALIASES])
            raise FilterError(f"unknown status {value!r}; use one of: {accepted}", value)

    priorities: set[Priority] = set()
    for value in _split(priority):
        digits = value.upper().removeprefix("P")
        if digits not in {"1", "2", "3", "4"}:
            raise FilterError(f"unknown priority {value!r}; use 1-4 or P1-P4", value)
        priorities.add(Priority(int(digits)))

    countries: set[str] = set()
    for value in _split(country):
        if not _COUNTRY.match(value.upper()):
            raise FilterError(f"country must be a two-letter ISO 3166 code such as KH, not {value!r}", value)
        countries.add(value.upper())

    areas: set[str] = set()
    for value in _split(area):
        if known_areas is not None and not known_areas(value.lower()):
            raise FilterError(
                f"unknown area {value!r}; area ids are listed by `beacon export --list-areas`", value
            )
        areas.add(value.lower())

    conditions: set[Condition] = set()
    documents = False
    canonical: list[str] = []
    by_htcds = {code.lower(): code for code in HTCDS_CODES}
    for value in _split(indicator):
        key = value.lower()
        if key in by_htcds:
            code = by_htcds[key]
            canonical.append(code)
            documents = documents or code == HTCDS_DOCUMENTS_WITHHELD
            conditions.update(cond for cond, codes in HTCDS_METHODS.items() if code in codes)
            if code != HTCDS_DOCUMENTS_WITHHELD and not any(code in c for c in HTCDS_METHODS.values()):
                raise FilterError(f"no Beacon question records the HTCDS code {code}", value)
        elif key == HTCDS_FORCED_CRIMINALITY.lower():
            canonical.append(HTCDS_FORCED_CRIMINALITY)
            conditions.add(Condition.FORCED_SCAMMING)
        elif key in Condition.__members__.values():
            canonical.append(key)
            conditions.add(Condition(key))
        else:
            raise FilterError(
                f"unknown indicator {value!r}; use an HTCDS MethodsOfControl code such as "
                "WithholdsDocuments, IllicitActivities, or a condition such as locked_in",
                value,
            )
    return ExportFilters(
        since=start,
        until=end,
        statuses=frozenset(statuses),
        priorities=frozenset(priorities),
        countries=frozenset(countries),
        areas=frozenset(areas),
        conditions=frozenset(conditions),
        documents=documents,
        indicators=tuple(dict.fromkeys(canonical)),
    )


# --- k-anonymity (public level) ----------------------------------------------------------------------

# Quasi-identifiers, each with its generalisation steps (level 0 = as recorded). The public export
# generalises whole columns (full-domain generalisation, as Datafly does), then suppresses the records
# still in groups smaller than k. Gender is treated as a quasi-identifier too, as CTDC does.
QUASI_IDENTIFIERS: tuple[str, ...] = ("period", "location", "citizenship", "age", "gender", "reporter")
_TOP_LEVEL = {"period": 3, "location": 2, "citizenship": 1, "age": 2, "gender": 1, "reporter": 1}
_LEVEL_NAMES = {
    "period": ("month", "quarter", "year", "withheld"),
    "location": ("area", "country", "withheld"),
    "citizenship": ("country", "withheld"),
    "age": ("band", "minor_or_adult", "withheld"),
    "gender": ("as_given", "withheld"),
    "reporter": ("as_given", "withheld"),
}

# (month "YYYY-MM", country, area id, citizenship, age band, gender, reporter type); None = unknown.
QuasiKey = tuple[str, str | None, str | None, str | None, str | None, str | None, str | None]


def _known(value: str | None) -> str | None:
    return None if value in (None, "", "unknown") else value


def quasi_key(case: ExportCase) -> QuasiKey:
    """The quasi-identifiers of a case, as recorded (level 0)."""
    return quasi_key_of(
        case.created_at,
        case.country,
        case.area_id,
        case.victim_nationality,
        case.nationalities,
        case.victim_age_band,
        case.victim_sex,
        case.reporter_type,
    )


def quasi_key_of(
    created_at: datetime,
    country: str | None,
    area_id: str | None,
    victim_nationality: str | None,
    nationalities: Sequence[str],
    age_band: str | None,
    sex: str | None,
    reporter_type: str | None,
) -> QuasiKey:
    """The quasi-identifiers from the stored columns (storage counts them without building cases)."""
    if victim_nationality:
        citizenship: str | None = victim_nationality
    else:
        citizenship = nationalities[0] if len(nationalities) == 1 else None
    return (
        created_at.astimezone(UTC).strftime("%Y-%m"),
        country,
        area_id,
        _known(citizenship),
        _known(age_band),
        _known(sex),
        reporter_type,
    )


Generalised = tuple[str | int, ...]


def _generalise(key: QuasiKey, levels: Mapping[str, int]) -> Generalised:
    month, country, area, citizenship, age, gender, reporter = key
    year, month_number = month.split("-")
    period: str | int = (
        month,
        f"{year}-Q{(int(month_number) - 1) // 3 + 1}",
        year,
        MISSING,
    )[levels["period"]]
    location = levels["location"]
    country_value: str | int = country if location < 2 and country else MISSING
    area_value: str | int = area if location < 1 and area else MISSING
    if levels["age"] == 0:
        age_value: str | int = age or MISSING
    elif levels["age"] == 1 and age is not None:
        age_value = "minor" if age == AgeBand.UNDER_18.value else "adult"
    else:
        age_value = MISSING
    return (
        period,
        country_value,
        area_value,
        (citizenship or MISSING) if levels["citizenship"] == 0 else MISSING,
        age_value,
        (gender or MISSING) if levels["gender"] == 0 else MISSING,
        (reporter or MISSING) if levels["reporter"] == 0 else MISSING,
    )


# Which positions of the generalised tuple each quasi-identifier covers (to count distinct values).
_POSITIONS = {
    "period": (0,),
    "location": (1, 2),
    "citizenship": (3,),
    "age": (4,),
    "gender": (5,),
    "reporter": (6,),
}


def _distinct(groups: Iterable[Generalised], name: str) -> int:
    positions = _POSITIONS[name]
    return len({tuple(group[i] for i in positions) for group in groups})


@dataclass(frozen=True)
class AnonymityPlan:
    """How the public export generalises each quasi-identifier and which groups it suppresses."""

    k: int
    levels: Mapping[str, int]
    kept_groups: frozenset[Generalised]
    records: int
    suppressed: int

    def generalise(self, case: ExportCase) -> Generalised | None:
        """The published quasi-identifiers of ``case``, or ``None`` if the record is suppressed."""
        values = _generalise(quasi_key(case), self.levels)
        return values if values in self.kept_groups else None

    def describe(self) -> dict[str, str]:
        return {name: _LEVEL_NAMES[name][level] for name, level in self.levels.items()}


def plan_anonymity(
    counts: Mapping[QuasiKey, int], *, k: int = DEFAULT_K, max_suppression: float = DEFAULT_MAX_SUPPRESSION
) -> AnonymityPlan:
    """Choose generalisation levels so that at most ``max_suppression`` of the records fall in groups
    smaller than ``k`` (Datafly: generalise the quasi-identifier with the most distinct values first),
    then suppress those records. Every published combination then occurs at least ``k`` times.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    total = sum(counts.values())
    levels = dict.fromkeys(QUASI_IDENTIFIERS, 0)

    def grouped() -> Counter[Generalised]:
        groups: Counter[Generalised] = Counter()
        for key, count in counts.items():
            groups[_generalise(key, levels)] += count
        return groups

    groups = grouped()
    while True:
        small = sum(count for count in groups.values() if count < k)
        if small <= max_suppression * total:
            break
        candidates = [name for name in QUASI_IDENTIFIERS if levels[name] < _TOP_LEVEL[name]]
        if not candidates:
            break

        # Most distinct values first; ties go to the earlier quasi-identifier.
        chosen = max(candidates, key=lambda name: (_distinct(groups, name), -QUASI_IDENTIFIERS.index(name)))
        levels[chosen] += 1
        groups = grouped()
    kept = frozenset(group for group, count in groups.items() if count >= k)
    suppressed = sum(count for group, count in groups.items() if count < k)
    return AnonymityPlan(k=k, levels=levels, kept_groups=kept, records=total, suppressed=suppressed)


# --- columns -----------------------------------------------------------------------------------------

_F, _P, _U = ExportLevel.FULL, ExportLevel.PARTNER, ExportLevel.PUBLIC


@dataclass(frozen=True, slots=True)
class RowInfo:
    """What is worked out once per row: the published quasi-identifiers and the HTCDS codes."""

    generalised: Generalised | None
    methods: tuple[str, ...]


Getter = Callable[[ExportCase, RowInfo], Value]


@dataclass(frozen=True)
class Column:
    """One exported column: its name, the levels that carry it, its standard name and HXL hashtag."""

    name: str
    levels: frozenset[ExportLevel]
    standard: str  # the HTCDS field or CTDC column it corresponds to, or "" when neither has one
    hxl: str
    description: str
    get: Getter = field(repr=False, compare=False)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _day_of(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).date().isoformat()


def _secret(name: str) -> Getter:
    def get(case: ExportCase, _: RowInfo) -> Value:
        value: Value = getattr(case.secrets, name) if case.secrets is not None else None
        return value

    return get


def _htcds_status(case: ExportCase) -> str:
    """HTCDS cas_Status: a case handed to another organisation is ClosedReferred from Beacon's side."""
    if case.status is CaseStatus.REFERRED:
        return "ClosedReferred"
    if case.status is CaseStatus.CLOSED:
        return "Closed"
    return "Active"


def _gender(value: str | None) -> str | None:
    return {
        "female": "Female",
        "male": "Male",
        "other": "Transgender/NonConforming",
        "unknown": "Unknown",
    }.get(value or "")


def _public(position: int) -> Getter:
    def get(_: ExportCase, row: RowInfo) -> Value:
        return MISSING if row.generalised is None else row.generalised[position]

    return get


def _flag(value: bool | None) -> int:
    return MISSING if value is None else int(value)


def _means(code: str) -> Getter:
    return lambda _, row: int(code in row.methods)


_FP = frozenset({_F, _P})
_FO = frozenset({_F})
_UO = frozenset({_U})

COLUMNS: tuple[Column, ...] = (
    # --- full and partner: one row per case -------------------------------------------------------
    Column("case_id", _FP, "", "#case+id", "Beacon's case id (random; shown on the ticket).",
           lambda c, _: c.case_id),
    Column("registered_at", _FO, "", "#date+reported", "When the report was received (ISO 8601, UTC).",
           lambda c, _: _iso(c.created_at)),
    Column("registered_on", _FP, "", "#date+reported", "The day the report was received (UTC).",
           lambda c, _: _day_of(c.created_at)),
    Column("updated_on", _FP, "", "#date+updated", "The day the case last changed (UTC).",
           lambda c, _: _day_of(c.updated_at)),
    Column("status", _FP, "", "#status",
           "Beacon workflow status: new, acknowledged, in_contact, referred, closed.",
           lambda c, _: c.status.value),
    Column("htcds_case_status", _FP, "cas_Status", "#status+htcds",
           "The status in HTCDS terms: Active (new, acknowledged, in contact), ClosedReferred, Closed.",
           lambda c, _: _htcds_status(c)),
    Column("closing_reason", _FP, "", "#status+reason", "Why a closed case was closed (a code).",
           lambda c, _: c.closing_reason),
    Column("priority", _FP, "", "#severity", "Triage priority: 1 (act now) to 4.",
           lambda c, _: int(c.priority)),
    Column("priority_reasons", _FP, "", "#severity+reason", "The triage reasons, strongest first (codes).",
           lambda c, _: c.reasons),
    Column("immediate_danger", _FP, "", "#severity+danger", "The reporter said someone is in danger now.",
           lambda c, _: c.immediate_danger),
    Column("fast_track", _FP, "", "#meta+fast_track",
           "Sent at once from the danger question; details may follow.", lambda c, _: c.fast_track),
    Column("reporter_type", _FP, "", "#contact+type", "Who reported: self, relative or witness.",
           lambda c, _: c.reporter_type),
    Column("country", _FP, "hte_Country", "#country+code",
           "Country where people are held (ISO 3166-1 alpha-2).", lambda c, _: c.country),
    Column("area_id", _FP, "vic_LocationOfExploitation", "#loc+code",
           "Gazetteer area where people are held (e.g. kh-preah-sihanouk).", lambda c, _: c.area_id),
    Column("latitude", _FO, "hte_Latitude", "#geo+lat", "Exact latitude the reporter shared.",
           _secret("latitude")),
    Column("longitude", _FO, "hte_Longitude", "#geo+lon", "Exact longitude the reporter shared.",
           _secret("longitude")),
    Column("place_details", _FO, "hte_Street", "#loc+name",
           "Compound, building, floor, landmarks (free text).",
           _secret("place_details")),
    Column("passport", _FP, "", "#indicator+passport", "Passport: taken, kept or unknown.",
           lambda c, _: c.passport),
    Column("phone", _FP, "", "#indicator+phone", "Phone: taken, kept or unknown.", lambda c, _: c.phone),
    Column("conditions", _FP, "", "#indicator+conditions", "Conditions the reporter named (Beacon codes).",
           lambda c, _: tuple(sorted(c.conditions))),
    Column("htcds_methods_of_control", _FP, "vic_MethodsOfControl", "#indicator+htcds",
           "HTCDS MethodsOfControl codes the answers support.", lambda _, r: r.methods),
    Column("htcds_type_of_labour_exploitation", _FP, "vic_TypeOfLabourExploitation",
           "#indicator+exploitation",
           "IllicitActivities when forced to run scams.",
           lambda c, _: (HTCDS_FORCED_CRIMINALITY,) if c.forced_criminality else ()),
    Column("ilo_indicators", _FP, "", "#indicator+ilo",
           "ILO forced-labour indicators (1-11) the answers support.",
           lambda c, _: c.ilo_indicators()),
    Column("people", _FP, "", "#affected+range", "How many people are held there (a range).",
           lambda c, _: c.people),
    Column("nationalities", _FP, "prs_Nationality", "#affected+nationality",
           "Nationalities of the people held (ISO 3166-1 alpha-2).", lambda c, _: c.nationalities),
    Column("victim_age_band", _FP, "", "#affected+age", "Age band of the potential victim.",
           lambda c, _: c.victim_age_band),
    Column("victim_gender", _FP, "prs_Gender", "#affected+gender",
           "Gender of the potential victim (HTCDS values).",
           lambda c, _: _gender(c.victim_sex)),
    Column("victim_nationality", _FP, "prs_Nationality", "#affected+nationality+victim",
           "Nationality of the potential victim.", lambda c, _: c.victim_nationality),
    Column("victim_name", _FO, "prs_FirstName", "#affected+name", "Name of the potential victim (free text).",
           _secret("victim_name")),
    Column("victim_passport_number", _FO, "", "#affected+passport", "Passport number (free text).",
           _secret("victim_passport_number")),
    Column("victim_handle", _FO, "prs_MobilePhone", "#affected+contact",
           "The potential victim's own phone number or handle.", _secret("victim_handle")),
    Column("victim_last_contact", _FO, "", "#date+contact", "Last day the family heard from them.",
           _secret("victim_last_contact")),
    Column("details", _FO, "hte_Description", "#description", "What the reporter wrote (free text).",
           _secret("details")),
    Column("additions", _FO, "", "#description+added", "Texts the reporter added later (free text).",
           _secret("additions")),
    Column("coordinator_notes", _FO, "", "#description+notes", "The team's internal notes (free text).",
           _secret("notes")),
    Column("contact_preference", _FP, "", "#contact+preference",
           "Whether the team may write back through Beacon: yes, on_check_in, no.", lambda c, _: c.contact),
    Column("language", _FP, "", "#meta+lang", "The language the report was written in.",
           lambda c, _: c.language),
    Column("corroborating_cases", _FP, "", "#meta+corroborating", "Earlier reports about the same place.",
           lambda c, _: c.corroborating_cases),
    Column("linked_cases", _FP, "", "#case+linked", "Ids of linked cases.", lambda c, _: c.linked_case_ids),
    Column("media_count", _FP, "", "#meta+media", "Photos and voice notes attached (kept encrypted).",
           lambda c, _: c.media_count),
    Column("additions_count", _FP, "", "#meta+additions", "Follow-up messages from the reporter.",
           lambda c, _: c.additions_count),
    Column("tags", _FO, "", "#meta+tags", "The team's tags.", lambda c, _: c.tags),
    Column("assignee", _FO, "", "#contact+caseworker", "The coordinator handling the case (staff label).",
           lambda c, _: c.assignee),
    Column("quarantined", _FO, "", "#meta+quarantined", "Held as a suspected flood.",
           lambda c, _: c.quarantined),
    Column("withdrawn_at", _FO, "", "#date+withdrawn", "When the reporter withdrew the report.",
           lambda c, _: _iso(c.withdrawn_at)),
    # --- public: CTDC-style, k-anonymous, no ids -------------------------------------------------
    Column("registrationPeriod", _UO, "yearOfRegistration", "#date+reported",
           "Month (YYYY-MM), quarter (YYYY-Qn) or year of the report, as anonymity allows; -99 withheld.",
           _public(0)),
    Column("CountryOfExploitation", _UO, "CountryOfExploitation", "#country+code",
           "Country where people are held (ISO alpha-2); -99 unknown or withheld.", _public(1)),
    Column("areaOfExploitation", _UO, "", "#loc+code",
           "Gazetteer area where people are held; -99 unknown or withheld.", _public(2)),
    Column("citizenship", _UO, "citizenship", "#affected+nationality",
           "Nationality of the potential victim (ISO alpha-2); -99 unknown or withheld.", _public(3)),
    Column("ageBroad", _UO, "ageBroad", "#affected+age",
           "Age band, or minor/adult, as anonymity allows; -99 unknown or withheld.", _public(4)),
    Column("gender", _UO, "gender", "#affected+gender",
           "female, male, other; -99 unknown or withheld.", _public(5)),
    Column("reporterType", _UO, "", "#contact+type",
           "Who reported: self, relative, witness; -99 withheld.", _public(6)),
    Column("immediateDanger", _UO, "", "#severity+danger", "1 if someone was said to be in danger now.",
           lambda c, _: _flag(c.immediate_danger)),
    Column("typeOfLabourIllicitActivities", _UO, "typeOfLabourIllicitActivities", "#indicator+exploitation",
           "1 if forced to run scams.", lambda c, _: int(c.forced_criminality)),
    *(
        Column(f"meansOfControl{code}", _UO, f"meansOfControl{code}", f"#indicator+control+{code.lower()}",
               f"1 if the answers support the HTCDS method of control {code}.", _means(code))
        for code in HTCDS_CODES
    ),
    Column("meansOfControlNotSpecified", _UO, "meansOfControlNotSpecified", "#indicator+control+unspecified",
           "1 if no method of control was named.", lambda _, r: int(not r.methods)),
)  # fmt: skip


def columns_for(level: ExportLevel) -> tuple[Column, ...]:
    """The columns ``level`` carries, in their stable order."""
    return tuple(column for column in COLUMNS if level in column.levels)


def row_values(
    columns: Sequence[Column], case: ExportCase, generalised: Generalised | None = None
) -> list[Value]:
    """The values of ``case`` for ``columns`` (``generalised``: its published quasi-identifiers)."""
    row = RowInfo(generalised, case.htcds_methods())
    return [column.get(case, row) for column in columns]


def column_dictionary_markdown() -> str:
    """The column dictionary (docs/export-columns.md), generated from ``COLUMNS``."""
    lines = [
        "# Export columns",
        "",
        "Generated from `bot/domain/export.py` (`python -m bot.domain.export > docs/export-columns.md`);",
        "a test fails when this file and the code differ. Columns appear in this order. Dates and times are",
        "ISO 8601 in UTC. Lists are joined with `; ` in CSV and XLSX cells and are arrays in JSONL;",
        "booleans are `true`/`false` in CSV and real booleans in JSONL and XLSX. The public level",
        "follows CTDC: `1`/`0` flags and `-99` for a value that is unknown or withheld to keep the",
        "export k-anonymous.",
        "",
    ]
    for level in ExportLevel:
        lines += [
            f"## Level `{level.value}`",
            "",
            "| # | column | HTCDS / CTDC | HXL | meaning |",
            "|---|---|---|---|---|",
        ]
        for number, column in enumerate(columns_for(level), 1):
            standard = f"`{column.standard}`" if column.standard else ""
            lines.append(
                f"| {number} | `{column.name}` | {standard} | `{column.hxl}` | {column.description} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation generator
    print(column_dictionary_markdown(), end="")
