"""The detectors at work: each event-time instant, read what they need through ``sinks``, judge, and keep
each alert's lifecycle in ClickHouse (``sinks.alert_log``).

``lmis worker`` runs :meth:`AlertJobs.hourly` at each Asia/Seoul hour and :meth:`AlertJobs.daily` at each
day's end, as event-time jobs (``streams.schedule``): live, seconds after the instant; in a replay at full
speed, as the replay passes it. A run repeated after a crash writes the same rows again (same version).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from alerts import judge
from alerts.model import DATA_FAULT, SIGNAL_MEASURES, Alert
from schemas.calendar import seoul_day, seoul_midnight
from sinks import alert_log, signals
from sinks.alert_log import FIRING, RESOLVED


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _row(alert: Alert, starts_at: datetime, job: str, instant: datetime, inhibited_by: str,
         first_instant: datetime) -> dict:
    return {"fingerprint": alert.fingerprint, "starts_at": starts_at, "state": FIRING, "ends_at": None,
            "name": alert.name, "class": alert.cls, "severity": alert.severity, "measure": alert.measure,
            "region": alert.region, "industry": alert.industry, "source": alert.source, "family": alert.family,
            "employer_id": alert.employer_id, "size_band": alert.size_band,
            "day": alert.day or seoul_day(instant), "observed": alert.observed, "expected": alert.expected,
            "lower": alert.lower, "upper": alert.upper, "direction": alert.direction,
            "summary_ko": alert.summary_ko, "summary_en": alert.summary_en,
            "labels": json.dumps(alert.labels, ensure_ascii=False),
            "annotations": json.dumps(alert.annotations, ensure_ascii=False), "inhibited_by": inhibited_by,
            "job": job, "instant": instant, "version": _ms(instant), "first_instant": first_instant}


def lifecycle(open_rows: Iterable[dict], found: Iterable[Alert], job: str, instant: datetime,
              inhibited_by: dict[str, str] | None = None) -> list[dict]:
    """The rows that move ``job``'s alerts to ``instant``: each found alert firing (an open episode goes on,
    at the severity it began with), each open episode not found resolved."""
    still = {r["fingerprint"]: r for r in open_rows}
    rows, seen = [], set()
    for alert in found:
        if alert.fingerprint in seen:
            continue
        seen.add(alert.fingerprint)
        prev = still.pop(alert.fingerprint, None)
        if prev is not None:
            alert = alert.with_severity(prev["severity"])
        starts = prev["starts_at"] if prev is not None else alert.first_seen.astimezone(UTC)
        first = prev["first_instant"] if prev is not None else instant
        rows.append(_row(alert, starts, job, instant, (inhibited_by or {}).get(alert.fingerprint, ""), first))
    for prev in still.values():
        rows.append({**{c: prev[c] for c in alert_log.COLUMNS}, "state": RESOLVED, "ends_at": instant,
                     "instant": instant, "version": _ms(instant)})
    return rows


class AlertJobs:
    """The hourly data-fault checks and the daily labour-market judgement over one ClickHouse client."""

    def __init__(self, client, lateness: timedelta = timedelta(hours=72), rules: judge.Rules = judge.RULES,
                 history_from: date | None = None):
        self.client, self.lateness, self.rules, self.history_from = client, lateness, rules, history_from
        self._first: dict[tuple[str, str], datetime] = {}

    def _apply(self, job: str, instant: datetime, found: list[Alert], inhibited_by: dict[str, str] | None = None
               ) -> list[dict]:
        rows = lifecycle(alert_log.open_episodes(self.client, job), found, job, instant, inhibited_by)
        alert_log.write(self.client, rows)
        return rows

    def hourly(self, instant: datetime, clock: datetime | None = None) -> list[dict]:
        """Data faults in the hours up to ``instant``: silent sources, duplicate bursts, dead letters."""
        r = self.rules
        last = signals.last_arrivals(self.client, instant, days=r.silent_weeks * 7)
        if not set(last) <= set(self._first):  # a source seen for the first time (or a new worker)
            self._first = signals.first_arrivals(self.client)
        spans = judge.silence_spans(instant, last, self._first, r)
        found = judge.silent_sources(instant, last, spans, signals.arrivals_between(self.client, spans,
                                                                                    self.lateness), r)
        hour_ago = instant - timedelta(hours=1)
        found += judge.duplicate_bursts(instant, signals.copies_sent(self.client, hour_ago, instant, self.lateness), r)
        found += judge.dead_letter_rate(instant, *signals.dead_letters_sent(self.client, hour_ago, instant), r)
        return self._apply(judge.HOURLY, instant, found)

    def pipeline(self, now: datetime | None = None) -> list[dict]:
        """The worker's own lag and freshness over the last minutes (wall clock: live only)."""
        now = now or datetime.now(UTC)
        ticks = signals.pipeline_ticks(self.client, now - self.rules.pipeline_window)
        return self._apply(judge.PIPELINE, now, judge.pipeline_behind(now, ticks, self.rules))

    def daily(self, instant: datetime, clock: datetime | None = None) -> list[dict]:
        """The day that ended at ``instant``: spikes, shifts, zeros and layoffs; labour-market alerts in a
        family whose feed had a data fault that day are kept but not delivered (``inhibited_by``)."""
        r = self.rules
        day = seoul_day(instant) - timedelta(days=1)
        lo = day - timedelta(days=r.history_days)
        series = signals.daily_series(self.client, list(SIGNAL_MEASURES), lo, day)
        days = [d for cell in series.values() for d in cell]
        if not days:
            return self._apply(judge.DAILY, instant, [])
        found = judge.labour_market(day, series, max(min(days), self.history_from or date.min), r)
        counts, employers = signals.employer_separations(
            self.client, day - timedelta(days=90), day, day - timedelta(days=r.layoff_window_days - 1),
            r.layoff_min_count, instant)
        found += judge.layoffs(day, counts, employers, r)
        faults = self.faults_during(day) + [
            (a.fingerprint, a.family, seoul_midnight(day), None) for a in found if a.cls == DATA_FAULT]
        inhibited = {a.fingerprint: judge.inhibited(a, faults) for a in found}
        return self._apply(judge.DAILY, instant, found, {k: v for k, v in inhibited.items() if v})

    def faults_during(self, day: date) -> list[tuple[str, str, datetime, datetime | None]]:
        """Data-fault episodes during ``day``: (fingerprint, family, from the start of the day their hours
        began, until they resolved or None)."""
        return [(row["fingerprint"], row["family"], seoul_midnight(row["day"]), row["ends_at"])
                for row in alert_log.history(self.client, day, day, cls=DATA_FAULT, limit=1000)]
