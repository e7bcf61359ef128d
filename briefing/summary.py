"""The briefing's written summary: three to six sentences from its numbers, by fixed templates (no I/O).

Every number in a sentence is written by the same functions as the tables (:mod:`briefing.figures`), so
the summary never says a number the tables do not hold; a sentence whose numbers are missing or suppressed
is left out.
"""

from __future__ import annotations

from briefing.content import Briefing
from briefing.figures import Figure, fmt_number, fmt_pct, label, suppressed
from dashboards.boards import labels


def _usable(f: Figure, *values: float | None) -> bool:
    return all(v is not None and not suppressed(f.kind, v) for v in (f.value, *values))


def _claims(b: Briefing, lang: str) -> str | None:
    f = b.figure("ui_initial_claims")
    week = f.comparisons["week_before"]
    if not _usable(f, week.value) or week.pct is None:
        return None
    v, pct, avg = fmt_number(f.value, f.kind), fmt_pct(week.pct).lstrip("+-"), fmt_number(f.ma28, "count")
    holiday = ""
    if week.holiday:
        holiday = (f"(전주 같은 요일은 {week.holiday})" if lang == "ko" else f" (that day was {week.holiday})")
    if lang == "ko":
        verb = "늘었다" if week.change > 0 else "줄었다" if week.change < 0 else "같았다"
        tail = "" if f.ma28 is None else f" 최근 4주 평균은 {avg}건이다."
        return f"실업급여 신규신청은 {v}건으로 전주 같은 요일{holiday}보다 {pct} {verb}." + tail
    verb = "up" if week.change > 0 else "down" if week.change < 0 else "unchanged"
    tail = "" if f.ma28 is None else f"; the 4-week average is {avg}"
    return f"UI initial claims were {v}, {verb} {pct} from the same day last week{holiday}{tail}."


def _openings(b: Briefing, lang: str) -> str | None:
    o, s, r = b.figure("openings_posted"), b.figure("new_job_seekers"), b.figure("offers_to_seekers_ratio")
    if not (_usable(o) and _usable(s) and r.value is not None):
        return None
    o_, s_, r_ = fmt_number(o.value, o.kind), fmt_number(s.value, s.kind), fmt_number(r.value, r.kind)
    if lang == "ko":
        return f"신규 구인인원은 {o_}명, 신규 구직자는 {s_}명으로 구인배수(유량)는 {r_}였다."
    return f"Employers posted {o_} openings and {s_} people registered as job seekers: {r_} openings per seeker."


def _insured(b: Briefing, lang: str) -> str | None:
    a, lo, n = b.figure("insured_acquisitions"), b.figure("insured_losses"), b.figure("insured_net_change")
    if not (_usable(a) and _usable(lo) and n.value is not None):
        return None
    a_, l_, n_ = fmt_number(a.value, a.kind), fmt_number(lo.value, lo.kind), fmt_number(n.value, n.kind)
    if lang == "ko":
        return f"고용보험 피보험자격 취득은 {a_}명, 상실은 {l_}명으로 순증은 {n_}명이다."
    return f"Insured employment changed by {n_}: {a_} acquisitions and {l_} losses."


def _mover(b: Briefing, lang: str) -> str | None:
    rising = [m for m in b.movers if m.dimension == "region" and m.measure == "ui_initial_claims" and m.change > 0]
    if not rising:
        return None
    m = rising[0]
    where = labels(lang)["region"].get(m.code, m.code)
    change = fmt_number(m.change, "net")
    if lang == "ko":
        return f"실업급여 신규신청이 가장 크게 늘어난 지역은 {where}({change}건, 전주 같은 요일 대비)이다."
    return f"Claims rose most in {where} ({change} on the same day last week)."


def _alerts(b: Briefing, lang: str) -> str:
    shown = [a for a in b.alerts if not a["inhibited_by"]]
    if not shown:
        return "이날 발생한 경보는 없다." if lang == "ko" else "No alerts were raised for the day."
    first = shown[0]["summary_ko" if lang == "ko" else "summary_en"]
    if lang == "ko":
        return f"경보 {len(shown)}건이 있었다. 그중 하나: {first}."
    return f"{len(shown)} alert{'s' if len(shown) > 1 else ''} were raised, among them: {first}."


def _revisions(b: Briefing, lang: str) -> str | None:
    if not b.revisions:
        return None
    n = len(b.revisions)
    if lang == "ko":
        return f"지난 브리핑 이후 이전 날짜의 수치 {n}개가 수정되었다(아래 '수정' 참조)."
    return f"{n} figure{'s' if n > 1 else ''} of earlier days changed since the last briefing (see Revisions)."


def sentences(b: Briefing, lang: str = "ko") -> list[str]:
    """The summary's sentences (three to six), Korean or English.

    A holiday is named first: officials read its low numbers differently."""
    out = []
    if b.holiday:
        out.append(f"{b.day.isoformat()}은 {b.holiday}(공휴일)이었다." if lang == "ko"
                   else f"{b.day.isoformat()} was a public holiday ({b.holiday}).")
    for part in (_claims, _openings, _insured, _mover, _revisions):
        s = part(b, lang)
        if s:
            out.append(s)
    out.append(_alerts(b, lang))
    return out[:6]


def heading(b: Briefing, lang: str = "ko") -> str:
    f = b.figure("ui_initial_claims")
    if lang == "ko":
        return f"{b.day.isoformat()} 고용동향 일일 브리핑 — {label(f.name, 'ko')} {fmt_number(f.value, f.kind)}건"
    return f"Daily labour-market briefing, {b.day.isoformat()} — {label(f.name, 'en')} {fmt_number(f.value, f.kind)}"

