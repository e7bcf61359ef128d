"""The briefing's charts as PNG images, drawn on the server with matplotlib and Korean fonts (Debian's
``fonts-noto-cjk``): e-mail clients show an inline image, not a script."""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")  # no display: images only
from matplotlib import font_manager  # noqa: E402 -- after the backend is chosen
from matplotlib.figure import Figure as Canvas  # noqa: E402

from briefing.content import Briefing  # noqa: E402
from briefing.figures import label  # noqa: E402
from sinks.indicators import moving_average  # noqa: E402

FONT_FAMILIES = ["Noto Sans CJK KR", "Noto Sans CJK JP", "DejaVu Sans"]
COLOURS = {"ui_initial_claims": "#c0392b", "ma7": "#7f1d1d", "openings_posted": "#1f6feb", "new_job_seekers": "#2e8b57"}


def _has_korean_font() -> bool:
    return any("Noto Sans CJK" in f.name for f in font_manager.fontManager.ttflist)


def _png(fig: Canvas) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _axes(title: str):
    fig = Canvas(figsize=(6.4, 2.6))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left", fontfamily=FONT_FAMILIES)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    return fig, ax


def _legend(ax) -> None:
    # above the plot, right-aligned: never over the lines
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False,
              prop={"family": FONT_FAMILIES, "size": 8})


def claims_chart(series: list[tuple[date, float | None]], lang: str) -> bytes:
    days = [d for d, _ in series]
    values = [v for _, v in series]
    fig, ax = _axes("실업급여 신규신청 (최근 8주)" if lang == "ko" else "UI initial claims, last 8 weeks")
    ax.bar(days, [v or 0 for v in values], color=COLOURS["ui_initial_claims"], alpha=0.45, width=0.8,
           label=label("ui_initial_claims", lang))
    ax.plot(days, moving_average(values), color=COLOURS["ma7"], linewidth=1.8,
            label="7일 평균" if lang == "ko" else "7-day average")
    _legend(ax)
    fig.autofmt_xdate()
    return _png(fig)


def supply_chart(openings: list[tuple[date, float | None]], seekers: list[tuple[date, float | None]],
                 lang: str) -> bytes:
    fig, ax = _axes("신규 구인인원과 신규 구직자 (7일 평균)" if lang == "ko"
                    else "Openings posted and new job seekers (7-day averages)")
    for name, series in (("openings_posted", openings), ("new_job_seekers", seekers)):
        ax.plot([d for d, _ in series], moving_average([v for _, v in series]), color=COLOURS[name], linewidth=1.8,
                label=label(name, lang))
    _legend(ax)
    fig.autofmt_xdate()
    return _png(fig)


def charts(b: Briefing, lang: str) -> dict[str, bytes]:
    """The briefing's images by content id: claims, and openings against seekers."""
    if not _has_korean_font() and lang == "ko":
        raise RuntimeError("no Korean font for the charts: install Debian's fonts-noto-cjk (make setup does)")
    return {"claims": claims_chart(b.series["ui_initial_claims"], lang),
            "supply": supply_chart(b.series["openings_posted"], b.series["new_job_seekers"], lang)}
