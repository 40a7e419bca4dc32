"""Beacon's domain vocabulary: what a report says, how a case is prioritised, and the codes behind both.

Pure data: no Telegram, no SQL, no translation. Handlers turn these codes into sentences in the reader's
language; storage turns them into rows.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Free text is kept whole, whatever its length, up to this many characters (a Telegram message is at most
# 4096; a reporter may add several). Longer input is refused by the handler with an explanation.
MAX_FREE_TEXT = 20_000


class ReporterType(StrEnum):
    """Who is telling us: the potential victim, someone close to them, or a witness."""

    SELF = "self"
    RELATIVE = "relative"
    WITNESS = "witness"


class Possession(StrEnum):
    """Whether the potential victim still holds something (passport, phone)."""

    TAKEN = "taken"
    KEPT = "kept"
    UNKNOWN = "unknown"


class Condition(StrEnum):
    """Conditions a reporter can tick; each maps to HTCDS methods of control and ILO indicators."""

    LOCKED_IN = "locked_in"
    VIOLENCE = "violence"
    SEXUAL_ABUSE = "sexual_abuse"
    THREATS = "threats"
    FORCED_SCAMMING = "forced_scamming"
    DEBT_OR_RANSOM = "debt_or_ransom"
    WAGES_WITHHELD = "wages_withheld"
    LONG_HOURS = "long_hours"
    NO_FOOD_OR_CARE = "no_food_or_care"
    DECEIVED = "deceived"
    SOLD_OR_MOVED = "sold_or_moved"
    CHILDREN_PRESENT = "children_present"


class IloIndicator(IntEnum):
    """The ILO's eleven indicators of forced labour (ILO, 2012)."""

    ABUSE_OF_VULNERABILITY = 1
    DECEPTION = 2
    RESTRICTION_OF_MOVEMENT = 3
    ISOLATION = 4
    PHYSICAL_AND_SEXUAL_VIOLENCE = 5
    INTIMIDATION_AND_THREATS = 6
    RETENTION_OF_IDENTITY_DOCUMENTS = 7
    WITHHOLDING_OF_WAGES = 8
    DEBT_BONDAGE = 9
    ABUSIVE_WORKING_AND_LIVING_CONDITIONS = 10
    EXCESSIVE_OVERTIME = 11


# HTCDS `MethodsOfControl` codes (IOM's Human Trafficking Case Data Standard) for each condition.
HTCDS_METHODS: dict[Condition, tuple[str, ...]] = {
    Condition.LOCKED_IN: ("RestrictsMovement",),
    Condition.VIOLENCE: ("PhysicalAbuse",),
    Condition.SEXUAL_ABUSE: ("SexualAbuse",),
    Condition.THREATS: ("Threats", "PsychologicalAbuse"),
    # Forced scamming is a type of exploitation (HTCDS IllicitActivities), not a method of control.
    Condition.FORCED_SCAMMING: (),
    Condition.DEBT_OR_RANSOM: ("DebtBondage",),
    Condition.WAGES_WITHHELD: ("TakesEarnings",),
    Condition.LONG_HOURS: ("ExcessiveWorkingHours",),
    Condition.NO_FOOD_OR_CARE: ("WithholdsNecessities", "RestrictsMedicalCare"),
    Condition.DECEIVED: ("FalsePromises",),
    Condition.SOLD_OR_MOVED: ("Other",),
    Condition.CHILDREN_PRESENT: ("UsesChildren",),
}
HTCDS_DOCUMENTS_WITHHELD = "WithholdsDocuments"
HTCDS_FORCED_CRIMINALITY = "IllicitActivities"  # TypeOfLabourExploitation

ILO_INDICATORS: dict[Condition, tuple[IloIndicator, ...]] = {
    Condition.LOCKED_IN: (IloIndicator.RESTRICTION_OF_MOVEMENT,),
    Condition.VIOLENCE: (IloIndicator.PHYSICAL_AND_SEXUAL_VIOLENCE,),
    Condition.SEXUAL_ABUSE: (IloIndicator.PHYSICAL_AND_SEXUAL_VIOLENCE,),
    Condition.THREATS: (IloIndicator.INTIMIDATION_AND_THREATS,),
    Condition.FORCED_SCAMMING: (IloIndicator.ABUSIVE_WORKING_AND_LIVING_CONDITIONS,),
    Condition.DEBT_OR_RANSOM: (IloIndicator.DEBT_BONDAGE,),
    Condition.WAGES_WITHHELD: (IloIndicator.WITHHOLDING_OF_WAGES,),
    Condition.LONG_HOURS: (IloIndicator.EXCESSIVE_OVERTIME,),
    Condition.NO_FOOD_OR_CARE: (IloIndicator.ABUSIVE_WORKING_AND_LIVING_CONDITIONS,),
    Condition.DECEIVED: (IloIndicator.DECEPTION,),
    Condition.SOLD_OR_MOVED: (IloIndicator.ABUSE_OF_VULNERABILITY,),
    Condition.CHILDREN_PRESENT: (IloIndicator.ABUSE_OF_VULNERABILITY,),
}


class PeopleCount(StrEnum):
    """How many people are held at the place, as a range a frightened person can pick."""

    ONE = "1"
    FEW = "2-5"
    SEVERAL = "6-20"
    MANY = "21-100"
    HUNDREDS = "100+"
    UNKNOWN = "unknown"

    @property
    def at_least(self) -> int:
        """The lower bound of the range (0 when unknown)."""
        return {"1": 1, "2-5": 2, "6-20": 6, "21-100": 21, "100+": 100}.get(self.value, 0)


class ContactPreference(StrEnum):
    """Whether the team may write to the reporter in this chat."""

    YES = "yes"
    ON_CHECK_IN = "on_check_in"
    NO = "no"


class AgeBand(StrEnum):
    UNDER_18 = "under_18"
    FROM_18_TO_24 = "18-24"
    FROM_25_TO_34 = "25-34"
    FROM_35_TO_49 = "35-49"
    OVER_50 = "50+"
    UNKNOWN = "unknown"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Place(BaseModel):
    """Where the person is held, as precisely as the reporter can say; every part may be missing."""

    model_config = ConfigDict(frozen=True)

    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    country: str | None = None  # ISO 3166-1 alpha-2, from the gazetteer
    area_id: str | None = None  # a gazetteer area id, e.g. "kh-preah-sihanouk"
    # Compound, building, floor, landmarks.
    details: str | None = Field(default=None, max_length=MAX_FREE_TEXT)
    unknown: bool = False  # the reporter said "I don't know"

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class VictimDetails(BaseModel):
    """Who the potential victim is, so an embassy or rescuer can identify them after a raid. All optional."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(default=None, max_length=500)
    age_band: AgeBand | None = None
    sex: Sex | None = None
    nationality: str | None = None  # ISO 3166-1 alpha-2 or free text
    passport_number: str | None = Field(default=None, max_length=100)
    handle: str | None = Field(default=None, max_length=500)  # their own phone number or messaging handle
    last_contact: date | None = None

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in self.model_dump().values())


class Report(BaseModel):
    """Everything a reporter told us in one report. Anything may be missing: every question is skippable."""

    model_config = ConfigDict(frozen=True)

    reporter_type: ReporterType | None = None
    immediate_danger: bool | None = None
    place: Place = Field(default_factory=Place)
    passport: Possession | None = None
    phone: Possession | None = None
    conditions: frozenset[Condition] = frozenset()
    people: PeopleCount | None = None
    nationalities: tuple[str, ...] = ()
    details: str | None = Field(default=None, max_length=MAX_FREE_TEXT)
    contact: ContactPreference | None = None
    victim: VictimDetails = Field(default_factory=VictimDetails)
    language: str = "en"
    fast_track: bool = False  # submitted at once from the danger question; the rest may follow with /add

    @field_validator("nationalities")
    @classmethod
    def _unique_nationalities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    def htcds_methods_of_control(self) -> tuple[str, ...]:
        """HTCDS MethodsOfControl codes this report supports, sorted, without duplicates."""
        codes = {code for condition in self.conditions for code in HTCDS_METHODS[condition]}
        if self.passport is Possession.TAKEN:
            codes.add(HTCDS_DOCUMENTS_WITHHELD)
        return tuple(sorted(codes))

    def ilo_indicators(self) -> tuple[IloIndicator, ...]:
        """ILO forced-labour indicators this report supports, in the ILO's order."""
        found = {indicator for condition in self.conditions for indicator in ILO_INDICATORS[condition]}
        if self.passport is Possession.TAKEN:
            found.add(IloIndicator.RETENTION_OF_IDENTITY_DOCUMENTS)
        if self.phone is Possession.TAKEN:
            found.add(IloIndicator.ISOLATION)
        return tuple(sorted(found))


class Priority(IntEnum):
    """P1 is the most urgent. Lower number, higher priority."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4


class Reason(StrEnum):
    """Why a case got its priority; handlers render each in the reader's language."""

    IMMEDIATE_DANGER = "IMMEDIATE_DANGER"
    VIOLENCE = "VIOLENCE"
    SEXUAL_ABUSE = "SEXUAL_ABUSE"
    CONFINEMENT = "CONFINEMENT"
    THREATS = "THREATS"
    DOCUMENTS_WITHHELD = "DOCUMENTS_WITHHELD"
    PHONE_TAKEN = "PHONE_TAKEN"
    DEBT_OR_RANSOM = "DEBT_OR_RANSOM"
    FORCED_CRIMINALITY = "FORCED_CRIMINALITY"
    DEPRIVATION = "DEPRIVATION"
    WAGES_WITHHELD = "WAGES_WITHHELD"
    EXCESSIVE_HOURS = "EXCESSIVE_HOURS"
    DECEPTION = "DECEPTION"
    SOLD_OR_MOVED = "SOLD_OR_MOVED"
    MINORS_PRESENT = "MINORS_PRESENT"
    MANY_PEOPLE = "MANY_PEOPLE"
    CORROBORATED = "CORROBORATED"


class Triage(BaseModel):
    """The outcome of triage: a priority, the reasons in order of weight, and the rules' version."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    reasons: tuple[Reason, ...]
    score: int
    corroborating_cases: int = 0
    rules_version: str


class CaseStatus(StrEnum):
    """A case's place in the coordinators' workflow."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_CONTACT = "in_contact"
    REFERRED = "referred"
    CLOSED = "closed"


class CaseSummary(BaseModel):
    """What triage and corroboration need to know about an earlier case (no free text, no identity)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    created_at: datetime
    latitude: float | None = None
    longitude: float | None = None
    area_id: str | None = None
    place_details: str | None = None  # decrypted compound/building text, for name similarity only
