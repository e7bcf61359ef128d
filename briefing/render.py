"""A briefing as the ministry reads it: an HTML e-mail (tables and inline styles, no scripts, no external
resources; charts as inline PNG parts), its plain-text alternative, and the same as a standalone page
(charts as data URIs). One Jinja template for both; every value escaped by it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from alerts.model import FAMILY_NAMES
from briefing.charts import charts
from briefing.content import Briefing
from briefing.figures import COMPARISONS, fmt_change, fmt_number, fmt_value, label
from briefing.summary import heading, sentences
from dashboards.boards import labels
from schemas.calendar import SEOUL

WORDS = {
    "ko": {"org": "LMIS · 고용동향 모니터링", "title": "고용동향 일일 브리핑", "as_of": "집계 기준", "summary": "요약",
           "basis": "전일(아시아/서울 기준 하루) 발생 기준",
           "headline": "주요 지표", "indicator": "지표", "vs": "{} 대비", "ma7": "7일 평균",
           "ma28": "실업급여 신규신청 4주 평균",
           "small_cells": "3명 미만은 <3, 자료 없음은 —", "holiday": "공휴일", "movers": "지역·산업별 주요 변동",
           "where": "지역/산업", "week_before": "전주 같은 요일", "change": "증감",
           "movers_rule": "전주 같은 요일 대비 증감이 큰 순서(두 날 중 하루라도 20건 이상인 경우만)",
           "alerts": "경보", "none": "없음", "revisions": "수정", "day": "날짜", "was": "지난 브리핑", "now": "현재",
           "why": "사유", "no_revisions": "지난 브리핑({day}) 이후 수정된 수치 없음",
           "first_briefing": "이전 브리핑 없음", "quality": "데이터 품질",
           "quality_basis": "이날(아시아/서울) 수신된 메시지 기준", "matching": "AI 일자리 매칭",
           "no_matching": "이날 매칭 기록 없음",
           "footer": "LMIS가 자동으로 작성한 보고입니다. 수치는 lmis indicators 및 API와 같습니다.",
           "messages": "수신 메시지", "duplicates": "중복 메시지(재전송)", "late": "지연 도착(이전 날짜 사건)",
           "dead": "오류 처리(DLQ)", "silent": "수신 중단 출처", "recommendations": "추천 제공 수",
           "p10": "Precision@10", "late_events": "지연 도착 {n}건 반영", "merged": "중복 제거·병합 반영",
           "firing": "진행 중", "resolved": "해소", "inhibited": "(데이터 장애로 보류)", "held": "보류",
           "region": "지역", "industry": "산업"},
    "en": {"org": "LMIS · employment-trend monitoring", "title": "Daily labour-market briefing", "as_of": "Data as of",
           "summary": "Summary", "basis": "events of the previous Asia/Seoul day",
           "headline": "Headline figures", "indicator": "Indicator", "vs": "vs {}", "ma7": "7-day average",
           "ma28": "UI initial claims, 4-week average", "small_cells": "below 3 shown as <3, missing as —",
           "holiday": "public holiday", "movers": "Top movers by region and industry",
           "where": "Region / industry", "week_before": "Same day last week", "change": "Change",
           "movers_rule": "Largest changes on the same day last week (cells with at least 20 on one of the days)",
           "alerts": "Alerts", "none": "None", "revisions": "Revisions", "day": "Day", "was": "Last briefing",
           "now": "Now", "why": "Why", "no_revisions": "No figure changed since the last briefing ({day})",
           "first_briefing": "No earlier briefing", "quality": "Data quality",
           "quality_basis": "Messages received during the day (Asia/Seoul)", "matching": "AI job matching",
           "no_matching": "No matching recorded for the day",
           "footer": "Written by LMIS automatically. Every number equals lmis indicators and the API.",
           "messages": "Messages received", "duplicates": "Duplicates (re-sent)",
           "late": "Late (events of earlier days)", "dead": "Dead-lettered", "silent": "Sources silent",
           "recommendations": "Recommendations served", "p10": "Precision@10",
           "late_events": "{n} late events arrived", "merged": "duplicates removed or merged",
           "firing": "firing", "resolved": "resolved", "inhibited": "(held: data fault)", "held": "held",
           "region": "Region", "industry": "Industry"},
}
SEVERITY_COLOURS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}
IMAGE_ALT = {"claims": ("실업급여 신규신청 최근 8주", "UI initial claims, last 8 weeks"),
             "supply": ("신규 구인인원과 구직자 7일 평균", "Openings and job seekers, 7-day averages")}

_env = Environment(loader=PackageLoader("briefing", "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def _context(b: Briefing, lang: str) -> dict:
    w = WORDS[lang]
    names = labels(lang)
    figures = []
    for f in b.figures:
        figures.append({"name": f.name, "label": label(f.name, lang), "value": fmt_value(f, f.value),
                        "ma7": fmt_number(f.ma7, "ratio" if f.kind == "ratio" else "count"),
                        "comparisons": [{"key": k, "change": fmt_change(c, f), "value": fmt_value(f, c.value),
                                         "day": c.day.isoformat(), "holiday": c.holiday}
                                        for k, c in f.comparisons.items()]})
    holidays = sorted({f"{c.day.isoformat()} {c.holiday}" for f in b.figures for c in f.comparisons.values()
                       if c.holiday})
    movers = [{"where": f"{w[m.dimension]} · {names[m.dimension].get(m.code, m.code)}", "label": label(m.measure, lang),
               "now": fmt_number(m.now, "count"), "before": fmt_number(m.before, "count"),
               "change": f"{fmt_number(m.change, 'net')} ({'—' if m.pct is None else f'{m.pct:+.1f}%'})",
               "colour": "#b42318" if (m.change > 0) == (m.measure == "ui_initial_claims") else "#067647"}
              for m in b.movers]
    alerts = [{"severity": a["severity"], "colour": SEVERITY_COLOURS.get(a["severity"], "#333"),
               "summary": a["summary_ko" if lang == "ko" else "summary_en"]
               + (f" {w['inhibited']}" if a["inhibited_by"] else ""),
               "state": w["resolved"] if a["ends_at"] is not None and a["ends_at"] <= b.as_of else w["firing"]}
              for a in b.alerts]
    revisions = [{"day": r.day.isoformat(), "label": label(r.name, lang), "old": fmt_number(r.old, r.kind),
                  "new": fmt_number(r.new, r.kind),
                  "why": (w["late_events"].format(n=f"{r.late_events:,}") if r.late_events else "")
                  + (w["merged"] if r.new is not None and r.old is not None and r.new < r.old else "")}
                 for r in b.revisions]
    q = b.quality
    quality = [(w["messages"], f"{q['messages']:,}"), (w["duplicates"], f"{q['duplicates']:,}"),
               (w["late"], f"{q['late']:,}"), (w["dead"], f"{q['dead_letters']:,}")]
    quality += [(f"{w['dead']}: {names['measure'].get(reason, reason)}", f"{n:,}")
                for reason, n in q["dead_by_reason"].items()]
    silent = sorted({f"{a['source']} ({FAMILY_NAMES.get(a['family'], (a['family'],) * 2)[0 if lang == 'ko' else 1]})"
                     for a in b.silent_sources})
    quality.append((w["silent"], ", ".join(silent) or w["none"]))
    matching = []
    if b.matching:
        if b.matching["recommendations"] is not None:
            matching.append((w["recommendations"], f"{b.matching['recommendations']:,}"))
        for ranker, m in sorted(b.matching["rankers"].items()):
            if ranker in ("model", "rule"):
                matching.append((f"{w['p10']} — {names['measure'].get(ranker, ranker)} ({m['queries']:,})",
                                 f"{m['precision_at_10']:.3f}"))
    claims = b.figure("ui_initial_claims")
    return {"lang": lang, "w": w, "day": b.day.isoformat(), "holiday": b.holiday,
            "as_of": b.as_of.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M"), "subject": subject(b, lang),
            "sentences": sentences(b, lang), "figures": figures,
            "comparisons": [(k, w["vs"].format(v[0 if lang == "ko" else 1] if lang == "ko" else v[1].lower()))
                            for k, v in COMPARISONS.items()],
            "claims_ma28": fmt_number(claims.ma28, "count"),
            "holidays_note": f"{w['holiday']}: {', '.join(holidays)}" if holidays else "",
            "movers": movers, "alerts": alerts, "revisions": revisions,
            "alerts_heading": _alerts_heading(b, w),
            "revisions_none": w["first_briefing"] if b.previous_day is None
            else w["no_revisions"].format(day=b.previous_day.isoformat()),
            "quality": quality, "matching": matching,
            "images": [(cid, IMAGE_ALT[cid][0 if lang == "ko" else 1]) for cid in ("claims", "supply")]}


def _alerts_heading(b: Briefing, w: dict) -> str:
    """"Alerts (2, held 1)": the count the summary gives (delivered ones), and those a data fault held."""
    held = sum(1 for a in b.alerts if a["inhibited_by"])
    return f"{w['alerts']} ({len(b.alerts) - held}" + (f", {w['held']} {held})" if held else ")")


def subject(b: Briefing, lang: str) -> str:
    return heading(b, lang)


def text(b: Briefing, lang: str) -> str:
    """The plain-text alternative: the summary and the headline table, aligned for a fixed-width font."""
    ctx = _context(b, lang)
    w = ctx["w"]
    lines = [ctx["subject"], f"{w['as_of']} {ctx['as_of']} KST", "", *ctx["sentences"], "", w["headline"]]
    for f in ctx["figures"]:
        parts = "; ".join(f"{name}: {c['change']} ({c['value']})"
                          for (_, name), c in zip(ctx["comparisons"], f["comparisons"], strict=True))
        lines.append(f"- {f['label']}: {f['value']}  [{parts}; {w['ma7']} {f['ma7']}]")
    lines.append(f"{w['ma28']}: {ctx['claims_ma28']}")
    lines += ["", ctx["alerts_heading"]]
    lines += [f"- [{a['severity']}] {a['summary']}" for a in ctx["alerts"]]
    lines += ["", f"{w['revisions']} ({len(ctx['revisions'])})"]
    lines += [f"- {r['day']} {r['label']}: {r['old']} → {r['new']} {r['why']}" for r in ctx["revisions"]]
    lines += ["", w["quality"]] + [f"- {k}: {v}" for k, v in ctx["quality"]]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str  # the e-mail's HTML (images by cid:)
    page: str  # the standalone page (images inline as data URIs)
    text: str
    images: dict[str, bytes]


def render(b: Briefing, lang: str = "ko") -> Rendered:
    images = charts(b, lang)
    ctx = _context(b, lang)
    template = _env.get_template("briefing.html")
    html = template.render(ctx, src=lambda cid: f"cid:{cid}")
    page = template.render(ctx, src=lambda cid: "data:image/png;base64," + base64.b64encode(images[cid]).decode())
    return Rendered(ctx["subject"], html, page, text(b, lang), images)


def message(r: Rendered, day: str, sender: str, recipients: list[str], sent_at: datetime) -> EmailMessage:
    """The MIME message: text and HTML alternatives, the charts as related inline images. Its Message-ID
    is the day's, so a copy sent twice (a crash between the send and its record) is one message to mail
    clients that de-duplicate."""
    # Headers unfolded (up to SMTP's 998): Python's folding drops the space between two encoded words of
    # a Korean subject ("— 실업급여" read back as "—실업급여").
    msg = EmailMessage(policy=default_policy.clone(max_line_length=998))
    msg["Subject"], msg["From"], msg["To"] = r.subject, sender, ", ".join(recipients)
    msg["Date"] = format_datetime(sent_at)
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "lmis.local"
    msg["Message-ID"] = f"<briefing-{day}@{domain}>"
    msg["X-LMIS-Briefing"] = day
    msg.set_content(r.text, cte="quoted-printable")  # 7-bit safe through any relay
    msg.add_alternative(r.html, subtype="html", cte="quoted-printable")
    html_part = msg.get_payload()[1]
    for cid, png in r.images.items():
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", filename=f"{cid}.png", disposition="inline")
    return msg

