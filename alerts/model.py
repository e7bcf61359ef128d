"""What an alert is: its class, cells, numbers and words, and the labels Alertmanager routes it by.

An alert is one condition of one cell (or source, or employer) over an episode of event time: it fires when
first seen, stays firing while the condition holds, and resolves when it no longer does. Its fingerprint
names the condition and the cell, not the episode, so the same layoff judged again (a restart, a replay)
is the same alert.

>>> from datetime import UTC, date, datetime
>>> a = Alert(name="LabourMarketSpike", cls=LABOUR_MARKET, severity="warning", measure="insurance.loss",
...           region="48", industry="C", observed=62, expected=9.0, lower=0.0, upper=21.0,
...           first_seen=datetime(2026, 3, 18, 15, tzinfo=UTC), day=date(2026, 3, 18), direction="up")
>>> a.labels["region_name"], a.labels["family"]
('경상남도', 'insurance')
>>> a.summary_en
'Insured losses in Gyeongnam, Manufacturing: 62 on 2026-03-18, expected 9 (0–21), up'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from schemas.codes import code_list

DATA_FAULT = "data_fault"
LABOUR_MARKET = "labour_market"
CLASSES = (DATA_FAULT, LABOUR_MARKET)
SEVERITIES = ("info", "warning", "critical")

# The measures judged for labour-market signals: (Korean, English) names, and the event family they come from
# (a data fault in that family's feed inhibits them).
SIGNAL_MEASURES: dict[str, tuple[str, str, str]] = {
    "ui.initial_claim": ("실업급여 신규신청", "UI initial claims", "ui"),
    "insurance.loss": ("피보험자격 상실", "Insured losses", "insurance"),
    "insurance.acquisition": ("피보험자격 취득", "Insured acquisitions", "insurance"),
    "openings.posted": ("신규 구인인원", "New openings posted", "vacancy"),
    "seeker.registered": ("신규 구직자", "New job seekers", "seeker"),
}
FAMILY_NAMES = {"vacancy": ("구인", "vacancy"), "seeker": ("구직", "job-seeker"), "ui": ("실업급여", "UI claim"),
                "insurance": ("고용보험", "insurance"), "application": ("입사지원", "application")}


def family_of(event_type: str) -> str:
    """The event family of an event type (``vacancy.submitted`` → ``vacancy``)."""
    return event_type.split(".", 1)[0]


def region_name(code: str, lang: str = "ko") -> str:
    if not code:
        return "전국" if lang == "ko" else "Korea"
    return code_list("regions").label(code, lang) if code in code_list("regions") else code


def industry_name(code: str, lang: str = "ko") -> str:
    return code_list("industries").label(code, lang) if code in code_list("industries") else code


def _n(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


@dataclass(frozen=True)
class Alert:
    """One alert as judged at one event-time instant: ``first_seen`` when its condition was first seen (event
    time), ``day`` the Asia/Seoul day judged (a data fault's: the day its hours began)."""

    name: str  # the condition: LabourMarketSpike, LabourMarketShift, LayoffWarning, SourceSilent, ...
    cls: str  # DATA_FAULT or LABOUR_MARKET
    severity: str
    first_seen: datetime
    day: date | None = None
    measure: str = ""
    region: str = ""  # '' national
    industry: str = ""
    source: str = ""
    family: str = ""
    employer_id: str = ""
    size_band: str = ""
    observed: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    direction: str = ""
    since: date | None = None  # a sustained shift's first day: the numbers are its totals since then
    detail_ko: str = ""  # what the numbers alone do not say (a data fault's own words)
    detail_en: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.cls not in CLASSES:
            raise ValueError(f"class must be one of {CLASSES}: {self.cls!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}: {self.severity!r}")
        if not self.family and self.measure in SIGNAL_MEASURES:
            object.__setattr__(self, "family", SIGNAL_MEASURES[self.measure][2])

    @property
    def key(self) -> tuple[str, ...]:
        """What makes two judgements the same condition (not the numbers, not the day)."""
        return (self.name, self.cls, self.measure, self.region, self.industry, self.source, self.family,
                self.employer_id)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\x1f".join(self.key).encode()).hexdigest()[:16]

    @property
    def labels(self) -> dict[str, str]:
        """Alertmanager's labels: stable for the condition (its identity there), routed and inhibited by
        ``class``, ``severity`` and ``family``."""
        labels = {"alertname": self.name, "class": self.cls, "severity": self.severity, "fingerprint": self.fingerprint,
                  "measure": self.measure, "region": self.region, "industry": self.industry, "source": self.source,
                  "family": self.family, "employer_id": self.employer_id, "system": "lmis"}
        if self.region:
            labels["region_name"] = region_name(self.region)
        if self.industry:
            labels["industry_name"] = industry_name(self.industry)
        return {k: v for k, v in labels.items() if v}

    def _cell(self, lang: str) -> str:
        parts = [region_name(self.region, lang)]
        if self.industry:
            parts.append(industry_name(self.industry, lang))
        return ", ".join(parts)

    def _numbers(self, lang: str) -> str:
        if self.observed is None:
            return ""
        band = "" if self.lower is None else f" ({_n(self.lower)}–{_n(self.upper)})"
        span = self.since is not None and self.since != self.day
        if lang == "ko":
            when = f"{self.since}~{self.day}" if span else f"{self.day}"
            return f"{when} {_n(self.observed)}건, 예상 {_n(self.expected)}{band}"
        when = f"from {self.since} to {self.day}" if span else f"on {self.day}"
        return f"{_n(self.observed)} {when}, expected {_n(self.expected)}{band}"

    def with_severity(self, severity: str) -> Alert:
        """The same alert at another severity (an episode keeps the severity it began with: Alertmanager knows
        an alert by its labels)."""
        return replace(self, severity=severity)

    @property
    def summary_ko(self) -> str:
        if self.employer_id:
            usual = "" if self.expected is None else f" (평소 {_n(self.expected)}건, 경보 기준 {_n(self.upper)}건)"
            return (f"대량 이직 조기경보: 사업장 {self.employer_id} ({self._cell('ko')}, 규모 {self.size_band or '—'}) "
                    f"{self.detail_ko}{usual}")
        if self.measure:
            word = {"up": "증가", "down": "감소"}.get(self.direction, "")
            what = SIGNAL_MEASURES.get(self.measure, (self.measure,))[0]
            return f"{what} {self._cell('ko')}: {self._numbers('ko')} {word}".strip() + (
                f" — {self.detail_ko}" if self.detail_ko else "")
        return self.detail_ko

    @property
    def summary_en(self) -> str:
        if self.employer_id:
            usual = "" if self.expected is None else f" (usually {_n(self.expected)}; alerts from {_n(self.upper)})"
            return (f"Layoff early warning: employer {self.employer_id} ({self._cell('en')}, size "
                    f"{self.size_band or '—'}) {self.detail_en}{usual}")
        if self.measure:
            what = SIGNAL_MEASURES.get(self.measure, ("", self.measure))[1]
            text = f"{what} in {self._cell('en')}: {self._numbers('en')}"
            text += f", {self.direction}" if self.direction else ""
            return text + (f" — {self.detail_en}" if self.detail_en else "")
        return self.detail_en

    @property
    def annotations(self) -> dict[str, str]:
        out = {"summary_ko": self.summary_ko, "summary_en": self.summary_en,
               "first_seen": self.first_seen.isoformat(), "day": "" if self.day is None else self.day.isoformat()}
        for k in ("observed", "expected", "lower", "upper"):
            if getattr(self, k) is not None:
                out[k] = f"{getattr(self, k):.1f}"
        return out
