"""Export domain: filters as people type them, who may export what, the columns of each level, and the
k-anonymity plan of the public level (checked independently of the plan's own bookkeeping)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.export import (
    MISSING,
    ExportCase,
    ExportFilters,
    ExportLevel,
    ExportSecrets,
    FilterError,
    QuasiKey,
    column_dictionary_markdown,
    columns_for,
    may_export,
    parse_filters,
    plan_anonymity,
    quasi_key,
    row_values,
)
from bot.domain.models import AgeBand, CaseStatus, Condition, Possession, Priority
from bot.domain.workflow import PERMISSIONS, Action, Role

REPO = Path(__file__).resolve().parents[2]
ALL_STATUSES = frozenset(CaseStatus)
OPEN = frozenset({CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_CONTACT})

# Columns that carry what a reporter wrote, where people are held exactly, or who someone is.
FREE_TEXT = {
    "place_details",
    "details",
    "additions",
    "coordinator_notes",
    "victim_name",
    "victim_passport_number",
    "victim_handle",
    "victim_last_contact",
}
COORDINATES = {"latitude", "longitude"}
# Beacon never exports these (it holds them only to write back to a reporter, or not at all).
REPORTER_IDENTITY = {
    "contact_chat_id",
    "chat_id",
    "user_id",
    "reporter_id",
    "reporter_pseudonym",
    "pseudonym",
    "receipt",
    "receipt_code",
    "username",
}
EXACT_TIMES = {"registered_at", "withdrawn_at"}
TEAM_ONLY = {"assignee", "tags", "quarantined"}
CASE_IDS = {"case_id", "linked_cases"}
PUBLIC_QUASI_IDENTIFIERS = [
    "registrationPeriod",
    "CountryOfExploitation",
    "areaOfExploitation",
    "citizenship",
    "ageBroad",
    "gender",
    "reporterType",
]


def names(level: ExportLevel) -> list[str]:
    return [column.name for column in columns_for(level)]


def export_case(**overrides: object) -> ExportCase:
    """A plain active case; ``overrides`` replace any field."""
    fields: dict[str, object] = {
        "case_id": "CASE-0001",
        "created_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        "status": CaseStatus.NEW,
        "priority": Priority.P2,
        "reasons": ("CONFINEMENT",),
        "corroborating_cases": 0,
        "reporter_type": "relative",
        "immediate_danger": False,
        "fast_track": False,
        "place_unknown": False,
        "country": "KH",
        "area_id": "kh-preah-sihanouk",
        "passport": None,
        "phone": None,
        "people": None,
        "nationalities": (),
        "contact": "yes",
        "language": "en",
        "victim_age_band": None,
        "victim_sex": None,
        "victim_nationality": None,
        "quarantined": False,
        "withdrawn_at": None,
        "closing_reason": None,
        "conditions": frozenset(),
    }
    fields.update(overrides)
    return ExportCase(**fields)  # type: ignore[arg-type]


def row(level: ExportLevel, case: ExportCase, generalised: tuple[object, ...] | None = None) -> dict:
    """The exported values of ``case`` at ``level``, by column name."""
    values = row_values(columns_for(level), case, generalised)  # type: ignore[arg-type]
    return dict(zip(names(level), values, strict=True))


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert len(message.splitlines()) == 1, message
    return message


# --- parse_filters ---------------------------------------------------------------------------------


def test_no_filters_mean_every_case():
    """Nothing given: every set is empty (any), no dates, no indicator filter."""
    filters = parse_filters()
    assert filters == ExportFilters()
    assert not filters.by_indicator


def test_dates_are_read_as_inclusive_days():
    """--since and --until are ISO days; blank is no bound; the same day on both is allowed."""
    filters = parse_filters(since="2026-01-31", until=" 2026-02-28 ")
    assert (filters.since, filters.until) == (date(2026, 1, 31), date(2026, 2, 28))
    assert parse_filters(since="2026-03-01", until="2026-03-01").since == date(2026, 3, 1)
    assert parse_filters(since="  ", until="").since is None


@pytest.mark.parametrize(
    ("since", "until", "needle"),
    [
        ("31/01/2026", None, "since"),
        (None, "yesterday", "until"),
        ("2026-02-30", None, "since"),
        ("2026-03-02", "2026-03-01", "after"),
    ],
)
def test_a_bad_date_or_reversed_range_is_one_clear_line(since, until, needle):
    """A date that is not a day, or since after until, is a FilterError naming the bound."""
    with pytest.raises(FilterError) as caught:
        parse_filters(since=since, until=until)
    assert needle in one_line(caught.value)


def test_status_accepts_open_comma_lists_and_any_case():
    """`open` means new, acknowledged and in_contact; lists may be comma-separated or repeated."""
    assert parse_filters(status=["open"]).statuses == OPEN
    assert parse_filters(status=["OPEN"]).statuses == OPEN
    assert parse_filters(status=["Closed"]).statuses == {CaseStatus.CLOSED}
    assert parse_filters(status=["new, referred", " closed "]).statuses == {
        CaseStatus.NEW,
        CaseStatus.REFERRED,
        CaseStatus.CLOSED,
    }
    assert parse_filters(status=["open,closed,referred"]).statuses == ALL_STATUSES
    assert parse_filters(status=[",", ""]).statuses == frozenset()


def test_an_unknown_status_names_the_accepted_values():
    with pytest.raises(FilterError) as caught:
        parse_filters(status=["new,pending"])
    message = one_line(caught.value)
    assert "'pending'" in message
    assert caught.value.value == "pending"  # quoted back by the bot in the reader's language
    for accepted in [*(status.value for status in CaseStatus), "open"]:
        assert accepted in message


def test_priority_accepts_digits_and_p_codes():
    """Priorities 1-4, written 1 or P1 or p1, in lists."""
    assert parse_filters(priority=["P1"]).priorities == {Priority.P1}
    assert parse_filters(priority=["p2,3", "P4"]).priorities == {Priority.P2, Priority.P3, Priority.P4}
    assert parse_filters(priority=["1", "P1"]).priorities == {Priority.P1}


@pytest.mark.parametrize("value", ["P5", "0", "high", "PP1", "1.0", "P-1"])
def test_an_unknown_priority_is_refused(value):
    with pytest.raises(FilterError) as caught:
        parse_filters(priority=[value])
    message = one_line(caught.value)
    assert repr(value) in message
    assert caught.value.value == value
    assert "P1-P4" in message


def test_countries_are_two_letter_codes_in_any_case():
    assert parse_filters(country=["kh, mm", "Th"]).countries == {"KH", "MM", "TH"}


@pytest.mark.parametrize("value", ["KHM", "K", "K1", "Cambodia", "k h"])
def test_a_country_that_is_not_alpha_2_is_refused(value):
    with pytest.raises(FilterError) as caught:
        parse_filters(country=[value])
    assert "two-letter" in one_line(caught.value)


def test_areas_are_checked_against_the_gazetteer_and_lowercased():
    """Area ids go through ``known_areas`` (lowercased); an unknown one points at --list-areas."""
    known = {"kh-poipet", "mm-myawaddy"}
    asked: list[str] = []

    def is_known(area_id: str) -> bool:
        asked.append(area_id)
        return area_id in known

    filters = parse_filters(area=["KH-Poipet,mm-myawaddy"], known_areas=is_known)
    assert filters.areas == known
    assert sorted(asked) == sorted(known)
    with pytest.raises(FilterError) as caught:
        parse_filters(area=["kh-poipet", "xx-atlantis"], known_areas=is_known)
    message = one_line(caught.value)
    assert "'xx-atlantis'" in message
    assert "--list-areas" in message


def test_documents_withheld_filters_on_the_passport_not_on_a_condition():
    """WithholdsDocuments is recorded as "passport taken": it sets ``documents``, no condition."""
    filters = parse_filters(indicator=["withholdsdocuments"])
    assert filters.documents
    assert filters.conditions == frozenset()
    assert filters.indicators == ("WithholdsDocuments",)
    assert filters.by_indicator


def test_illicit_activities_is_forced_scamming():
    filters = parse_filters(indicator=["ILLICITACTIVITIES"])
    assert filters.conditions == {Condition.FORCED_SCAMMING}
    assert filters.indicators == ("IllicitActivities",)
    assert not filters.documents


def test_indicators_take_conditions_and_dedupe_in_canonical_spelling():
    """Beacon conditions are accepted as such; repeats are listed once, in the order given."""
    filters = parse_filters(indicator=["Locked_In, debt_or_ransom", "psychologicalabuse,LOCKED_IN"])
    assert filters.conditions == {Condition.LOCKED_IN, Condition.DEBT_OR_RANSOM, Condition.THREATS}
    assert filters.indicators == ("locked_in", "debt_or_ransom", "PsychologicalAbuse")
    # "threats" is also an HTCDS code: it is read as the code, which selects the same condition.
    threats = parse_filters(indicator=["threats"])
    assert (threats.conditions, threats.indicators) == ({Condition.THREATS}, ("Threats",))


@pytest.mark.parametrize(
    "code",
    [
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
        "Other",
    ],
)
def test_each_htcds_code_filters_on_the_conditions_that_record_it(code):
    """An HTCDS code selects exactly the conditions whose answers support it; a code no question records
    is refused rather than silently matching nothing."""
    # Written out from the HTCDS mapping of the intake questions (bot/domain/models.py).
    recorded_by = {
        "RestrictsMovement": {Condition.LOCKED_IN},
        "PhysicalAbuse": {Condition.VIOLENCE},
        "SexualAbuse": {Condition.SEXUAL_ABUSE},
        "Threats": {Condition.THREATS},
        "PsychologicalAbuse": {Condition.THREATS},
        "DebtBondage": {Condition.DEBT_OR_RANSOM},
        "TakesEarnings": {Condition.WAGES_WITHHELD},
        "ExcessiveWorkingHours": {Condition.LONG_HOURS},
        "WithholdsNecessities": {Condition.NO_FOOD_OR_CARE},
        "RestrictsMedicalCare": {Condition.NO_FOOD_OR_CARE},
        "FalsePromises": {Condition.DECEIVED},
        "Other": {Condition.SOLD_OR_MOVED},
        "UsesChildren": {Condition.CHILDREN_PRESENT},
    }
    if code not in recorded_by:
        with pytest.raises(FilterError) as caught:
            parse_filters(indicator=[code])
        assert code in one_line(caught.value)
        return
    filters = parse_filters(indicator=[code.upper()])
    assert filters.conditions == recorded_by[code]
    assert filters.indicators == (code,)
    assert not filters.documents


def test_an_unknown_indicator_suggests_what_is_accepted():
    with pytest.raises(FilterError) as caught:
        parse_filters(indicator=["locked_in", "Witchcraft"])
    message = one_line(caught.value)
    assert "'Witchcraft'" in message
    assert caught.value.value == "Witchcraft"
    assert "WithholdsDocuments" in message


typed = st.text(max_size=12) | st.sampled_from(["open", "P1", "kh", "2026-02-30", "1,2", "locked_in"])


@settings(max_examples=150, deadline=None)
@given(
    since=st.none() | typed,
    until=st.none() | typed,
    status=st.lists(typed, max_size=3),
    priority=st.lists(typed, max_size=3),
    country=st.lists(typed, max_size=3),
    area=st.lists(typed, max_size=3),
    indicator=st.lists(typed, max_size=3),
)
def test_any_typed_input_parses_or_fails_with_one_filter_error_line(
    since, until, status, priority, country, area, indicator
):
    """Whatever is typed, parse_filters returns filters or raises FilterError with a one-line message."""
    try:
        filters = parse_filters(
            since=since,
            until=until,
            status=status,
            priority=priority,
            country=country,
            area=area,
            indicator=indicator,
            known_areas=lambda area_id: area_id.startswith("kh-"),
        )
    except FilterError as exc:
        one_line(exc)
        return
    assert all(re.fullmatch("[A-Z]{2}", code) for code in filters.countries)
    assert all(area_id.startswith("kh-") for area_id in filters.areas)
    assert filters.since is None or filters.until is None or filters.since <= filters.until


def test_audit_details_are_short_codes_with_a_digest_of_all_filters():
    """The audit trail gets each filter (or how many values when long) and a digest that tells filters
    apart."""
    few = parse_filters(status=["open"], priority=["P1"], country=["kh"])
    details = few.audit_details()
    assert details["filter_status"] == "acknowledged,in_contact,new"
    assert details["filter_priority"] == "1"
    assert details["filter_country"] == "KH"
    assert "filter_since" not in details
    many = parse_filters(country=[f"{a}{b}" for a in "ABCDEFG" for b in "ABCDEFG"]).audit_details()
    assert many["filter_country"] == "49 values"
    assert all(len(str(value)) <= 64 for value in [*details.values(), *many.values()])
    assert details["filters_digest"] != many["filters_digest"]
    assert parse_filters().audit_details()["filters_digest"] != details["filters_digest"]
    assert details == parse_filters(country=["KH"], priority=["1"], status=["open"]).audit_details()


# --- who may export -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, {ExportLevel.FULL, ExportLevel.PARTNER, ExportLevel.PUBLIC}),
        (Role.ANALYST, {ExportLevel.PARTNER, ExportLevel.PUBLIC}),
        (Role.COORDINATOR, set()),
        (None, set()),
    ],
)
def test_only_admins_export_everything_and_analysts_the_redacted_levels(role, allowed):
    for level in ExportLevel:
        assert may_export(role, level) is (level in allowed), (role, level)


def test_whoever_may_export_at_some_level_holds_the_export_permission():
    """The level matrix and the workflow's EXPORT permission agree."""
    for role in [*Role, None]:
        any_level = any(may_export(role, level) for level in ExportLevel)
        assert any_level is (role is not None and role in PERMISSIONS[Action.EXPORT])


# --- columns ------------------------------------------------------------------------------------------


def test_full_carries_free_text_and_coordinates_but_never_the_reporter():
    full = set(names(ExportLevel.FULL))
    assert full >= FREE_TEXT
    assert full >= COORDINATES
    assert not full & REPORTER_IDENTITY


def test_partner_has_no_free_text_coordinates_exact_times_or_team_internals():
    partner = set(names(ExportLevel.PARTNER))
    assert not partner & (FREE_TEXT | COORDINATES | REPORTER_IDENTITY | EXACT_TIMES | TEAM_ONLY)
    assert {"area_id", "country", "registered_on", "htcds_methods_of_control"} <= partner


def test_public_has_ctdc_columns_only_no_ids_no_text_no_places_below_area():
    public = names(ExportLevel.PUBLIC)
    assert public[: len(PUBLIC_QUASI_IDENTIFIERS)] == PUBLIC_QUASI_IDENTIFIERS
    forbidden = FREE_TEXT | COORDINATES | REPORTER_IDENTITY | EXACT_TIMES | TEAM_ONLY | CASE_IDS
    assert not set(public) & forbidden
    assert not set(public) & set(names(ExportLevel.PARTNER))
    rest = public[len(PUBLIC_QUASI_IDENTIFIERS) :]
    assert all(
        name in {"immediateDanger", "typeOfLabourIllicitActivities"} or name.startswith("meansOfControl")
        for name in rest
    )


@pytest.mark.parametrize("level", list(ExportLevel))
def test_column_names_are_unique_and_tagged(level):
    columns = columns_for(level)
    assert len({column.name for column in columns}) == len(columns)
    assert all(column.hxl.startswith("#") and " " not in column.hxl for column in columns)
    assert all(column.description for column in columns)


def test_the_committed_column_dictionary_is_current():
    """docs/export-columns.md is generated: regenerate with python -m bot.domain.export >
    docs/export-columns.md."""
    committed = (REPO / "docs" / "export-columns.md").read_text(encoding="utf-8")
    assert committed == column_dictionary_markdown(), (
        "docs/export-columns.md is stale: regenerate with "
        "python -m bot.domain.export > docs/export-columns.md"
    )


def test_the_column_dictionary_lists_each_level_in_export_order():
    """Read back from the document, each level's table numbers its columns in the order exported."""
    text = column_dictionary_markdown()
    for level in ExportLevel:
        section = text.split(f"## Level `{level.value}`", 1)[1].split("## Level", 1)[0]
        rows = re.findall(r"^\| (\d+) \| `([^`]+)` \|", section, flags=re.MULTILINE)
        assert [int(number) for number, _ in rows] == list(range(1, len(rows) + 1))
        assert [name for _, name in rows] == names(level)


SECRET_MARKERS = ExportSecrets(
    latitude=10.987654,
    longitude=103.123456,
    place_details="MK-place",
    details="MK-details",
    victim_name="MK-name",
    victim_passport_number="MK-passport",
    victim_handle="MK-handle",
    victim_last_contact="MK-last",
    additions=("MK-addition",),
    notes=("MK-note",),
)


def flatten(values: list[object]) -> str:
    return "|".join("|".join(map(str, value)) if isinstance(value, tuple) else str(value) for value in values)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (
            ExportLevel.FULL,
            {
                "MK-place",
                "MK-details",
                "MK-name",
                "MK-passport",
                "MK-handle",
                "MK-last",
                "MK-addition",
                "MK-note",
                "10.987654",
                "103.123456",
                "MK-case",
                "MK-linked",
                "MK-tag",
                "MK-assignee",
                "T09:41:07",
            },
        ),
        (ExportLevel.PARTNER, {"MK-case", "MK-linked"}),
        (ExportLevel.PUBLIC, set()),
    ],
)
def test_planted_markers_show_each_level_carries_exactly_its_fields(level, expected):
    """A marker in every identifying or free-text field: each level's row carries exactly its own."""
    case = export_case(
        case_id="MK-case",
        created_at=datetime(2026, 3, 1, 9, 41, 7, tzinfo=UTC),
        linked_case_ids=("MK-linked",),
        tags=("MK-tag",),
        assignee="MK-assignee",
        secrets=SECRET_MARKERS,
    )
    all_markers = {
        "MK-place",
        "MK-details",
        "MK-name",
        "MK-passport",
        "MK-handle",
        "MK-last",
        "MK-addition",
        "MK-note",
        "10.987654",
        "103.123456",
        "MK-case",
        "MK-linked",
        "MK-tag",
        "MK-assignee",
        "T09:41:07",
    }
    plan = plan_anonymity(Counter({quasi_key(case): 20}))
    generalised = plan.generalise(case) if level is ExportLevel.PUBLIC else None
    text = flatten(row_values(columns_for(level), case, generalised))
    assert {marker for marker in all_markers if marker in text} == expected


def test_partner_dates_are_days_and_full_keeps_the_time():
    case = export_case(created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    partner = row(ExportLevel.PARTNER, case)
    assert partner["registered_on"] == "2026-03-01"
    assert partner["updated_on"] == "2026-03-02"
    full = row(ExportLevel.FULL, case)
    assert full["registered_at"] == "2026-03-01T23:30:00+00:00"


def test_htcds_codes_come_from_conditions_and_the_taken_passport():
    """Partner carries HTCDS codes; public carries one CTDC flag per code, NotSpecified when none."""
    case = export_case(
        conditions=frozenset({Condition.LOCKED_IN.value, Condition.FORCED_SCAMMING.value}),
        passport=Possession.TAKEN.value,
    )
    partner = row(ExportLevel.PARTNER, case)
    assert partner["htcds_methods_of_control"] == ("RestrictsMovement", "WithholdsDocuments")
    assert partner["htcds_type_of_labour_exploitation"] == ("IllicitActivities",)

    plan = plan_anonymity(Counter({quasi_key(case): 11}))
    public = row(ExportLevel.PUBLIC, case, plan.generalise(case))
    flags = {name: value for name, value in public.items() if name.startswith("meansOfControl")}
    assert {name for name, value in flags.items() if value == 1} == {
        "meansOfControlRestrictsMovement",
        "meansOfControlWithholdsDocuments",
    }
    assert set(flags.values()) == {0, 1}
    assert public["typeOfLabourIllicitActivities"] == 1
    bare = export_case()
    bare_public = row(ExportLevel.PUBLIC, bare, plan.generalise(bare))
    assert bare_public["meansOfControlNotSpecified"] == 1
    assert bare_public["typeOfLabourIllicitActivities"] == 0


# --- k-anonymity ------------------------------------------------------------------------------------

MONTHS = [f"{year}-{month:02d}" for year in (2025, 2026) for month in range(1, 13)]
PLACES = [
    ("KH", "kh-preah-sihanouk"),
    ("KH", "kh-poipet"),
    ("KH", None),
    ("MM", "mm-myawaddy"),
    ("TH", "th-mae-sot"),
    (None, None),
]
BANDS = [band.value for band in AgeBand if band is not AgeBand.UNKNOWN]

quasi_keys = st.builds(
    lambda month, place, citizenship, age, sex, reporter: (month, *place, citizenship, age, sex, reporter),
    st.sampled_from(MONTHS),
    st.sampled_from(PLACES),
    st.sampled_from(["VN", "CN", "ID", "PH", None]),
    st.sampled_from([*BANDS, None]),
    st.sampled_from(["female", "male", "other", None]),
    st.sampled_from(["self", "relative", "witness", None]),
)
counters = st.lists(st.tuples(quasi_keys, st.integers(1, 50)), max_size=40).map(
    lambda pairs: Counter(dict(pairs))
)


def case_with(key: QuasiKey, number: int = 0) -> ExportCase:
    """A case whose quasi-identifiers are exactly ``key``."""
    month, country, area, citizenship, age, sex, reporter = key
    year, month_number = map(int, month.split("-"))
    # A time late in the month's last day in UTC+7 still falls in the month in UTC.
    created = datetime(year, month_number, 28, 16, 59, tzinfo=UTC) + timedelta(seconds=number)
    return export_case(
        case_id=f"CASE-{number:04d}",
        created_at=created,
        country=country,
        area_id=area,
        victim_nationality=citizenship,
        victim_age_band=age,
        victim_sex=sex,
        reporter_type=reporter,
    )


# The generalisation steps of the issue, written independently of bot.domain.export.
def expected_published(key: QuasiKey, how: dict[str, str]) -> tuple[object, ...]:
    month, country, area, citizenship, age, sex, reporter = key
    year, month_number = month.split("-")
    period = {
        "month": month,
        "quarter": f"{year}-Q{(int(month_number) + 2) // 3}",
        "year": year,
        "withheld": MISSING,
    }[how["period"]]
    country_out = country if how["location"] in {"area", "country"} and country else MISSING
    area_out = area if how["location"] == "area" and area else MISSING
    if age is None or how["age"] == "withheld":
        age_out: object = MISSING
    elif how["age"] == "band":
        age_out = age
    else:
        age_out = "minor" if age == AgeBand.UNDER_18.value else "adult"

    def as_given(value: str | None, name: str, level: str = "as_given") -> object:
        return value if value is not None and how[name] == level else MISSING

    return (
        period,
        country_out,
        area_out,
        as_given(citizenship, "citizenship", "country"),
        age_out,
        as_given(sex, "gender"),
        as_given(reporter, "reporter"),
    )


@settings(max_examples=200, deadline=None)
@given(counts=counters, k=st.integers(2, 15), max_suppression=st.floats(0, 0.5))
def test_every_published_combination_occurs_at_least_k_times(counts, k, max_suppression):
    """Recomputed from the plan's levels on synthetic cases: each published combination has ≥ k
    records, suppressed ones are exactly those in smaller groups, and suppression stays within its share
    unless every quasi-identifier is already withheld."""
    plan = plan_anonymity(counts, k=k, max_suppression=max_suppression)
    total = sum(counts.values())
    how = plan.describe()

    expected_groups: Counter[tuple[object, ...]] = Counter()
    for key, count in counts.items():
        expected_groups[expected_published(key, how)] += count

    published: Counter[tuple[object, ...]] = Counter()
    suppressed = 0
    for number, (key, count) in enumerate(counts.items()):
        values = plan.generalise(case_with(key, number))
        expected = expected_published(key, how)
        if values is None:
            assert expected_groups[expected] < k
            suppressed += count
        else:
            assert tuple(values) == expected
            published[tuple(values)] += count

    assert all(count >= k for count in published.values())
    assert plan.records == total
    assert plan.suppressed == suppressed
    assert sum(published.values()) + suppressed == total
    everything_withheld = set(how.values()) == {"withheld"}
    assert everything_withheld or suppressed <= max_suppression * total


def test_plan_generalises_before_it_suppresses():
    """Twelve records split over two areas of one country: publishing the country keeps them all."""
    base = ("2026-03", "KH", "kh-poipet", "VN", "25-34", "male", "relative")
    other = ("2026-03", "KH", "kh-preah-sihanouk", "VN", "25-34", "male", "relative")
    plan = plan_anonymity(Counter({base: 6, other: 6}), k=11, max_suppression=0.1)
    assert plan.describe()["location"] == "country"
    assert plan.suppressed == 0
    assert plan.generalise(case_with(base)) == ("2026-03", "KH", MISSING, "VN", "25-34", "male", "relative")


def test_plan_suppresses_a_small_remainder_rather_than_generalising_everyone():
    """One odd record among many identical ones is suppressed (within 10%) and the rest stay exact."""
    common = ("2026-03", "KH", "kh-poipet", "VN", "25-34", "male", "relative")
    odd = ("2025-07", "MM", "mm-myawaddy", "CN", "under_18", "female", "self")
    plan = plan_anonymity(Counter({common: 30, odd: 1}), k=11, max_suppression=0.1)
    assert set(plan.describe().values()) <= {"month", "area", "country", "band", "as_given"}
    assert plan.suppressed == 1
    assert plan.generalise(case_with(odd)) is None
    assert plan.generalise(case_with(common)) == common


def test_a_plan_needs_a_positive_k_and_handles_no_records():
    with pytest.raises(ValueError, match="k must be"):
        plan_anonymity(Counter(), k=0)
    empty = plan_anonymity(Counter(), k=11)
    assert (empty.records, empty.suppressed) == (0, 0)


# --- the age band, exported and read back ---------------------------------------------------------------


@pytest.mark.parametrize("band", list(AgeBand))
def test_partner_reads_back_the_age_band_as_given(band):
    case = export_case(victim_age_band=band.value)
    values = row(ExportLevel.PARTNER, case)
    assert values["victim_age_band"] == band.value


@pytest.mark.parametrize("band", list(AgeBand))
def test_public_reads_back_the_band_when_groups_are_large_enough(band):
    """Eleven identical records: the band is published as given (unknown as -99)."""
    case = export_case(victim_age_band=band.value)
    plan = plan_anonymity(Counter({quasi_key(case): 11}), k=11)
    values = row(ExportLevel.PUBLIC, case, plan.generalise(case))
    assert values["ageBroad"] == (MISSING if band is AgeBand.UNKNOWN else band.value)


def test_public_generalises_bands_to_minor_or_adult_consistently():
    """Eleven minors and three records of each adult band: bands become minor/adult, none suppressed."""
    counts: Counter[QuasiKey] = Counter()
    for band in AgeBand:
        if band is not AgeBand.UNKNOWN:
            key = quasi_key(export_case(victim_age_band=band.value))
            counts[key] = 11 if band is AgeBand.UNDER_18 else 3
    plan = plan_anonymity(counts, k=11, max_suppression=0.1)
    assert plan.describe()["age"] == "minor_or_adult"
    assert plan.suppressed == 0
    for band in AgeBand:
        if band is AgeBand.UNKNOWN:
            continue
        case = export_case(victim_age_band=band.value)
        values = row(ExportLevel.PUBLIC, case, plan.generalise(case))
        assert values["ageBroad"] == ("minor" if band is AgeBand.UNDER_18 else "adult")


@settings(max_examples=100, deadline=None)
@given(counts=counters, k=st.integers(2, 15))
def test_a_published_age_is_the_band_or_its_generalisation(counts, k):
    """Whatever the plan, ageBroad is the recorded band, minor/adult agreeing with it, or -99."""
    plan = plan_anonymity(counts, k=k)
    for number, key in enumerate(counts):
        case = case_with(key, number)
        generalised = plan.generalise(case)
        if generalised is None:
            continue
        age = row(ExportLevel.PUBLIC, case, generalised)["ageBroad"]
        band = key[4]
        allowed = {MISSING} if band is None else {band, MISSING, "minor" if band == "under_18" else "adult"}
        assert age in allowed
