"""What an event is: one pydantic model per event type in a common envelope.

Envelope: ``event_id``, ``event_type``, ``schema_version``, ``occurred_at`` (tz-aware), ``source``, then
``payload``. Every payload carries the breakdowns its indicators need (region, industry, occupation and,
where the source knows them, establishment size, age band and sex), so that an aggregate never needs a
join with another stream.

Evolution rule: versions are backward compatible (a new version may only add optional fields); a reader
rejects a ``schema_version`` it does not know with ``unsupported_schema_version`` -- a dead-letter case,
never a crash.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from schemas.codes import code_list, occupation_sub_majors
from schemas.pii import find_pii


def _codes(name: str) -> Any:
    # A Literal over the code list: validation and an enum in the exported JSON Schema.
    return Literal[code_list(name).values()]  # type: ignore[valid-type]


Region = Annotated[_codes("regions"), Field(description="시도 code (code list `regions`)")]
Industry = Annotated[_codes("industries"), Field(description="KSIC section A-U (code list `industries`)")]
Occupation = Annotated[
    Literal[occupation_sub_majors()],  # type: ignore[valid-type]
    Field(description="KSCO sub-major group (code list `occupations`)"),
]
SizeBand = Annotated[_codes("size_bands"), Field(description="establishment size band")]
AgeBand = Annotated[_codes("age_bands"), Field(description="age band")]
Sex = Annotated[_codes("sexes"), Field(description="M or F")]
Education = Annotated[_codes("education_levels"), Field(description="education level")]
Skill = _codes("skills")
Qualification = _codes("qualifications")
Source = Annotated[_codes("sources"), Field(description="portal or agency that produced the event")]
EmploymentType = _codes("employment_types")
WageType = _codes("wage_types")
SeparationReason = _codes("separation_reasons")


def _pseudo_id(prefix: str, what: str) -> Any:
    # Pseudonymous ids only: a prefix letter and 16 hex digits (a keyed hash in production).
    return Annotated[
        str,
        StringConstraints(pattern=rf"^{prefix}[0-9a-f]{{16}}$"),
        Field(description=f"pseudonymous {what} id: '{prefix}' and 16 hex digits"),
    ]


VacancyId = _pseudo_id("V", "vacancy")
EmployerId = _pseudo_id("E", "employer")
SeekerId = _pseudo_id("S", "job seeker")
ApplicationId = _pseudo_id("A", "application")
ClaimId = _pseudo_id("C", "UI claim")
PersonId = _pseudo_id("P", "insured person")


def _screen(text: str) -> str:
    kind = find_pii(text)
    if kind:
        raise ValueError(f"looks like a {kind}; personal data is not allowed in free text")
    return text


ScreenedText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_screen),
    Field(description="free text, screened: no resident registration numbers, phone numbers or e-mails"),
]

Codes10 = Field(default_factory=list, max_length=10)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Event(BaseModel):
    """The common envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] = Field(
        description="unique id of this event (32 hex digits); a re-sent event keeps its id"
    )
    schema_version: int
    # The range as constraints, checked in pydantic-core: a Python validator cost ~0.5 µs on every event.
    occurred_at: AwareDatetime = Field(ge=datetime(2000, 1, 1, tzinfo=UTC), lt=datetime(2101, 1, 1, tzinfo=UTC),
                                       description="when it happened, with a time zone (years 2000-2100)")
    source: Source

    @property
    def entity_id(self) -> str:
        return getattr(self.payload, KEY_FIELD[self.event_type])  # type: ignore[attr-defined]


# --- vacancies -------------------------------------------------------------------------------------------

class VacancyDims(Payload):
    vacancy_id: VacancyId
    employer_id: EmployerId
    region: Region
    industry: Industry
    occupation: Occupation
    size_band: SizeBand


class VacancySubmittedPayload(VacancyDims):
    """An employer submitted a vacancy on a portal; LMIS's review decides whether it is posted."""

    title: ScreenedText
    openings: int = Field(ge=1, le=999, description="persons sought (구인인원)")
    employment_type: EmploymentType
    # Optional in the schema because portals omit them; the review rejects a posting without them.
    wage_type: WageType | None = None
    wage_amount: int | None = Field(default=None, ge=0, le=1_000_000_000, description="KRW per wage_type")
    work_hours_per_week: int | None = Field(default=None, ge=1, le=68)
    deadline: date | None = Field(default=None, description="application deadline (Asia/Seoul day)")
    education_required: Education = "none"
    experience_years_required: int = Field(default=0, ge=0, le=40)
    skills: list[Skill] = Codes10
    qualifications: list[Qualification] = Codes10


class VacancyUpdatedPayload(VacancyDims):
    openings: int | None = Field(default=None, ge=1, le=999)
    wage_amount: int | None = Field(default=None, ge=0, le=1_000_000_000)
    deadline: date | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> VacancyUpdatedPayload:
        if self.openings is None and self.wage_amount is None and self.deadline is None:
            raise ValueError("an update must change openings, wage_amount or deadline")
        return self


class VacancyClosedPayload(VacancyDims):
    reason: _codes("vacancy_close_reasons")  # type: ignore[valid-type]
    openings_filled: int = Field(default=0, ge=0, le=999)


class VacancySubmitted(Event):
    event_type: Literal["vacancy.submitted"]
    schema_version: Literal[1]
    payload: VacancySubmittedPayload


class VacancyUpdated(Event):
    event_type: Literal["vacancy.updated"]
    schema_version: Literal[1]
    payload: VacancyUpdatedPayload


class VacancyClosed(Event):
    event_type: Literal["vacancy.closed"]
    schema_version: Literal[1]
    payload: VacancyClosedPayload


# --- job seekers and applications --------------------------------------------------------------------------

class SeekerRegisteredPayload(Payload):
    seeker_id: SeekerId
    region: Region
    industry: Industry | None = Field(default=None, description="industry of the last job, if any")
    occupation: Occupation = Field(description="desired occupation")
    age_band: AgeBand
    sex: Sex
    education: Education
    experience_years: int = Field(ge=0, le=60)
    expected_wage_monthly: int | None = Field(default=None, ge=0, le=100_000_000, description="KRW a month")
    skills: list[Skill] = Codes10
    qualifications: list[Qualification] = Codes10
    vocational_training: bool = False
    ui_claimant: bool = False


class SeekerRegistered(Event):
    event_type: Literal["seeker.registered"]
    schema_version: Literal[1]
    payload: SeekerRegisteredPayload


class ApplicationDims(Payload):
    application_id: ApplicationId
    seeker_id: SeekerId
    vacancy_id: VacancyId
    region: Region = Field(description="the vacancy's region")
    industry: Industry = Field(description="the vacancy's industry")
    occupation: Occupation = Field(description="the vacancy's occupation")
    age_band: AgeBand = Field(description="the seeker's age band")
    sex: Sex = Field(description="the seeker's sex")


class ApplicationSubmittedPayload(ApplicationDims):
    channel: _codes("application_channels")  # type: ignore[valid-type]


class ApplicationOutcomePayload(ApplicationDims):
    outcome: _codes("application_outcomes")  # type: ignore[valid-type]


class ApplicationSubmitted(Event):
    event_type: Literal["application.submitted"]
    schema_version: Literal[1]
    payload: ApplicationSubmittedPayload


class ApplicationOutcome(Event):
    event_type: Literal["application.outcome"]
    schema_version: Literal[1]
    payload: ApplicationOutcomePayload


# --- unemployment insurance --------------------------------------------------------------------------------

class ClaimDims(Payload):
    claim_id: ClaimId
    seeker_id: SeekerId
    region: Region = Field(description="region of the job centre handling the claim")
    industry: Industry = Field(description="industry of the lost job")
    occupation: Occupation = Field(description="occupation of the lost job")
    age_band: AgeBand
    sex: Sex


class UIInitialClaimPayload(ClaimDims):
    employer_id: EmployerId = Field(description="last employer")
    size_band: SizeBand
    separation_reason: SeparationReason
    insured_months: int = Field(ge=0, le=600)


class UIContinuedClaimPayload(ClaimDims):
    certification_no: int = Field(ge=1, le=20, description="실업인정 회차")
    days_certified: int = Field(ge=1, le=31)


class UIClaimEndedPayload(ClaimDims):
    reason: _codes("claim_end_reasons")  # type: ignore[valid-type]
    days_paid: int = Field(ge=0, le=300)


class UIInitialClaim(Event):
    event_type: Literal["ui.initial_claim"]
    schema_version: Literal[1]
    payload: UIInitialClaimPayload


class UIContinuedClaim(Event):
    event_type: Literal["ui.continued_claim"]
    schema_version: Literal[1]
    payload: UIContinuedClaimPayload


class UIClaimEnded(Event):
    event_type: Literal["ui.claim_ended"]
    schema_version: Literal[1]
    payload: UIClaimEndedPayload


# --- employment insurance enrolment ------------------------------------------------------------------------

class InsuranceDims(Payload):
    person_id: PersonId
    employer_id: EmployerId
    region: Region = Field(description="region of the workplace")
    industry: Industry
    occupation: Occupation
    size_band: SizeBand
    age_band: AgeBand
    sex: Sex
    employment_type: EmploymentType


class InsuranceAcquisitionPayload(InsuranceDims):
    """An insured job starts (피보험자격 취득)."""


class InsuranceLossPayload(InsuranceDims):
    """An insured job ends (피보험자격 상실)."""

    separation_reason: SeparationReason


class InsuranceAcquisition(Event):
    event_type: Literal["insurance.acquisition"]
    schema_version: Literal[1]
    payload: InsuranceAcquisitionPayload


class InsuranceLoss(Event):
    event_type: Literal["insurance.loss"]
    schema_version: Literal[1]
    payload: InsuranceLossPayload


EVENT_MODELS: tuple[type[Event], ...] = (
    VacancySubmitted, VacancyUpdated, VacancyClosed, SeekerRegistered, ApplicationSubmitted,
    ApplicationOutcome, UIInitialClaim, UIContinuedClaim, UIClaimEnded, InsuranceAcquisition, InsuranceLoss,
)
AnyEvent: TypeAlias = Annotated[Union[tuple(EVENT_MODELS)], Field(discriminator="event_type")]  # noqa: UP007
EVENT_TYPES: tuple[str, ...] = tuple(m.model_fields["event_type"].annotation.__args__[0] for m in EVENT_MODELS)
MODEL_OF: dict[str, type[Event]] = dict(zip(EVENT_TYPES, EVENT_MODELS, strict=True))
SUPPORTED_VERSIONS: dict[str, tuple[int, ...]] = {
    t: m.model_fields["schema_version"].annotation.__args__ for t, m in MODEL_OF.items()
}

# Transport contract: the topic of each event family and the entity id that keys its messages.
TOPICS: dict[str, str] = {
    "vacancy": "lmis.vacancies",
    "application": "lmis.applications",
    "seeker": "lmis.seekers",
    "ui": "lmis.ui-claims",
    "insurance": "lmis.insurance",
}
DLQ_TOPIC = "lmis.dlq"
KEY_FIELD: dict[str, str] = {
    "vacancy.submitted": "vacancy_id", "vacancy.updated": "vacancy_id", "vacancy.closed": "vacancy_id",
    "seeker.registered": "seeker_id",
    "application.submitted": "application_id", "application.outcome": "application_id",
    "ui.initial_claim": "claim_id", "ui.continued_claim": "claim_id", "ui.claim_ended": "claim_id",
    "insurance.acquisition": "person_id", "insurance.loss": "person_id",
}


def topic_of(event_type: str) -> str:
    return TOPICS[event_type.split(".", 1)[0]]


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)
