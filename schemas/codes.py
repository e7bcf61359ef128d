"""Code lists (regions, KSIC, KSCO, bands, ...) as data with Korean and English labels.

The lists live in ``schemas/codes/*.json`` so that officials can review them without reading code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Code:
    code: str
    ko: str
    en: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def label(self, lang: str = "ko") -> str:
        return self.ko if lang == "ko" else self.en


@dataclass(frozen=True)
class CodeList:
    name: str
    note: str
    codes: tuple[Code, ...]

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def __iter__(self):
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def by_code(self) -> dict[str, Code]:
        return _index(self)

    def values(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes)

    def label(self, code: str, lang: str = "ko") -> str:
        return self.by_code[code].label(lang)


@cache
def _index(codes: CodeList) -> dict[str, Code]:
    return {c.code: c for c in codes.codes}


CODE_LIST_NAMES = (
    "regions", "industries", "occupations", "size_bands", "age_bands", "sexes", "education_levels",
    "skills", "qualifications", "sources", "vacancy_close_reasons", "application_outcomes",
    "employment_types", "wage_types", "separation_reasons", "claim_end_reasons", "application_channels",
    "prohibited_job_terms", "minimum_wage",
)


@cache
def code_list(name: str) -> CodeList:
    raw = json.loads(resources.files("schemas").joinpath("codes", f"{name}.json").read_text("utf-8"))
    codes = tuple(
        Code(r["code"], r["ko"], r["en"], {k: v for k, v in r.items() if k not in ("code", "ko", "en")})
        for r in raw["codes"]
    )
    return CodeList(raw["name"], raw["note"], codes)


def occupation_sub_majors() -> tuple[str, ...]:
    """KSCO sub-major groups: the occupation level events carry."""
    return tuple(c.code for c in code_list("occupations") if c.extra.get("level") == "sub_major")


def occupation_major(code: str) -> str:
    return code[0]


def education_rank(code: str) -> int:
    return int(code_list("education_levels").by_code[code].extra["rank"])


def region_coordinates() -> dict[str, tuple[float, float]]:
    return {c.code: (c.extra["lat"], c.extra["lon"]) for c in code_list("regions")}


def minimum_wage(year: int) -> int:
    """The statutory hourly minimum wage (KRW) in force in ``year``."""
    table = {int(c.code): int(c.extra["hourly"]) for c in code_list("minimum_wage")}
    known = [y for y in table if y <= year] or [min(table)]
    return table[max(known)]


def wage_hours() -> dict[str, int]:
    """Hours per wage period, to turn a wage into an hourly one (monthly: 209 h with paid weekly rest)."""
    return {c.code: int(c.extra["hours"]) for c in code_list("wage_types")}
