"""The briefing as an event-time job: at each day's ``hour`` (Asia/Seoul) the next morning, read the day's
numbers, render the e-mail and the page, and keep them (``sinks.briefing_log``); the mailer sends what is
kept. Live, shortly after 08:00; in a replay, as the replay passes 08:00 -- a simulated week, seven
briefings. A day already kept is not rendered again (a re-run after a crash keeps the one first made)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from briefing.content import read
from briefing.render import message, render
from schemas.calendar import seoul_day
from sinks import briefing_log
from sinks.indicators import MEASURES
from sinks.readers import first_day, first_whole_day, last_day

# The flows whose first day together starts the briefings.
FEEDS = ("ui_initial_claims", "openings_posted", "new_job_seekers", "insured_acquisitions", "insured_losses")


@dataclass(frozen=True)
class BriefingConfig:
    lang: str = "ko"
    recipients: tuple[str, ...] = ()
    sender: str = "lmis@localhost"
    hour: int = 8
    lateness: timedelta = timedelta(hours=72)
    start: date | None = None  # the first day briefed; None: the first day every headline feed flowed

    def day_of(self, instant: datetime) -> date:
        """The day a briefing due at ``instant`` (``hour`` o'clock, Asia/Seoul) is about: the day before."""
        return seoul_day(instant - timedelta(hours=self.hour)) - timedelta(days=1)


def recipients(listed: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (listed or "").split(",") if a.strip())


def make(client, day: date, as_of: datetime, cfg: BriefingConfig, lang: str | None = None) -> dict:
    """The day's briefing as a ``briefings`` row: read as of ``as_of``, rendered, its message dated then."""
    b = read(client, day, as_of, cfg.lateness)
    r = render(b, lang or cfg.lang)
    msg = message(r, day.isoformat(), cfg.sender, list(cfg.recipients) or ["undisclosed-recipients:;"], as_of)
    return {"day": day, "lang": lang or cfg.lang, "subject": r.subject, "recipients": ", ".join(cfg.recipients),
            "message": msg.as_string(), "page": r.page, "text": r.text,
            "figures": json.dumps(b.stated(), ensure_ascii=False), "instant": as_of, "as_of": as_of}


def preview(client, day: date, lang: str, cfg: BriefingConfig, now: datetime | None = None) -> dict | None:
    """The day's briefing rendered now from the current numbers (None for a day outside the data)."""
    first, last = first_day(client), last_day(client)
    if first is None or not first <= day <= last:
        return None
    return make(client, day, now or datetime.now(UTC), cfg, lang)


class BriefingJob:
    """``run(instant, clock)`` for the scheduler: keep the briefing of the day that ``instant`` follows."""

    def __init__(self, client, cfg: BriefingConfig):
        self.client, self.cfg = client, cfg
        self._start = cfg.start

    def start(self) -> date | None:
        """The first day to brief: set, or the first on which every headline feed counted something (a history
        loaded at go-live is not briefed day by day). Once found, every later day is briefed, whatever its
        data (a feed down is news, said in the briefing's data-quality section)."""
        if self._start is None:
            self._start = first_whole_day(self.client, [MEASURES[name] for name in FEEDS])
        return self._start

    def run(self, instant: datetime, clock: datetime | None = None) -> None:
        day = self.cfg.day_of(instant)
        start = self.start()
        if start is None or day < start:
            return
        if not briefing_log.exists(self.client, day):
            briefing_log.write(self.client, make(self.client, day, instant, self.cfg))
