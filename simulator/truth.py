"""The exact truth of a simulated run: what a correct pipeline must count, day by day.

Counts are per Asia/Seoul day of ``occurred_at`` and per cell ``region|industry|occupation`` ("-" where an
event has no industry). Re-sent duplicates count once; broken messages and events later than the allowed
lateness count nowhere (they are listed under ``anomalies``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from simulator import calibration as cal
from simulator.scenarios import ScenarioPlan, injected

ANOMALY_ID_LIMIT = 2000


def cell_of(payload: dict) -> str:
    return f"{payload['region']}|{payload.get('industry') or '-'}|{payload['occupation']}"


class Truth:
    def __init__(self, cfg: Any, dates: list[date], warmup: int):
        self.cfg = cfg
        self.dates = dates
        self.W = warmup
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.open_delta: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # day -> region -> openings
        self.open_vac_delta: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.anomalies: dict[str, Any] = {
            "duplicates": {"count": 0, "event_ids": []},
            "malformed": {"count": 0, "by_kind": {}, "event_ids": []},
            "late_within": {"count": 0, "event_ids": []},
            "late_beyond": {"count": 0, "event_ids": []},
            "outage_dropped": {"count": 0},
            "outage_backfilled": {"count": 0},
        }
        self.stocks: dict[str, Any] = {}

    def _add(self, measure: str, day: str, cell: str, n: int = 1) -> None:
        if n:
            self.counts[measure][day][cell] += n

    @staticmethod
    def _note(bucket: dict, event_id: str) -> None:
        bucket["count"] += 1
        if len(bucket["event_ids"]) < ANOMALY_ID_LIMIT:
            bucket["event_ids"].append(event_id)

    def count(self, doc: dict, late: str | None) -> None:
        if late == "beyond":
            self._note(self.anomalies["late_beyond"], doc["event_id"])
            return
        if late == "within":
            self._note(self.anomalies["late_within"], doc["event_id"])
        etype, payload = doc["event_type"], doc["payload"]
        day = doc["occurred_at"][:10]  # occurred_at is written in Asia/Seoul local time
        cell = cell_of(payload)
        self._add(etype, day, cell)
        if etype == "vacancy.closed":
            self._add(f"vacancy.closed:{payload['reason']}", day, cell)
            self._add("openings.filled", day, cell, payload["openings_filled"])
        elif etype == "application.outcome":
            self._add(f"application.outcome:{payload['outcome']}", day, cell)
        elif etype == "ui.initial_claim":
            self._add(f"ui.initial_claim:{payload['separation_reason']}", day, cell)

    def review(self, day: int, outcome: str, payload: dict, emitted: bool) -> None:
        if not emitted:
            return
        d, cell = self.dates[day].isoformat(), cell_of(payload)
        if outcome == "posted":
            self._add("vacancy.posted", d, cell)
            self._add("openings.posted", d, cell, payload["openings"])
        else:
            self._add(f"vacancy.rejected:{outcome}", d, cell)

    def vacancy_life(self, day: int, close_day: int, openings: int, payload: dict, emitted: bool) -> None:
        if not emitted:
            return
        region = payload["region"]
        open_d, close_d = self.dates[day].isoformat(), self.dates[close_day].isoformat()
        self.open_delta[open_d][region] += openings
        self.open_delta[close_d][region] -= openings
        self.open_vac_delta[open_d][region] += 1
        self.open_vac_delta[close_d][region] -= 1

    def duplicate(self, doc: dict) -> None:
        self._note(self.anomalies["duplicates"], doc["event_id"])

    def outage(self, doc: dict, dropped: bool) -> None:
        self.anomalies["outage_dropped" if dropped else "outage_backfilled"]["count"] += 1

    def malformed(self, kind: str, reason: str, event_id: str) -> None:
        m = self.anomalies["malformed"]
        m["count"] += 1
        entry = m["by_kind"].setdefault(kind, {"count": 0, "dead_letter_reason": reason})
        entry["count"] += 1
        if len(m["event_ids"]) < ANOMALY_ID_LIMIT:
            m["event_ids"].append(event_id)

    def malformed_total(self) -> int:
        return self.anomalies["malformed"]["count"]

    def finish(self) -> None:
        """Close the books: end-of-day stocks (a vacancy closed on day D is not open at the end of D)."""
        end = self.dates[self.W + self.cfg.days - 1]
        first = min([date.fromisoformat(d) for d in self.open_delta] or [end])
        totals: dict[str, dict[str, dict[str, int]]] = {"open_openings": {}, "open_vacancies": {}}
        for name, deltas in (("open_openings", self.open_delta), ("open_vacancies", self.open_vac_delta)):
            running: dict[str, int] = defaultdict(int)
            d = first
            while d <= end:
                for region, n in deltas.get(d.isoformat(), {}).items():
                    running[region] += n
                totals[name][d.isoformat()] = {r: n for r, n in sorted(running.items()) if n}
                d += timedelta(days=1)
        # Insured persons: the stock at the start plus the net flows counted above.
        insured: dict[str, int] = {}
        stock = round(cal.INSURED_STOCK * self.cfg.scale)
        d = self.cfg.start
        while d <= end:
            key = d.isoformat()
            stock += sum(self.counts["insurance.acquisition"].get(key, {}).values())
            stock -= sum(self.counts["insurance.loss"].get(key, {}).values())
            insured[key] = stock
            d += timedelta(days=1)
        self.stocks = {**totals, "insured_persons": insured,
                       "insured_persons_opening": round(cal.INSURED_STOCK * self.cfg.scale)}

    def to_dict(self) -> dict[str, Any]:
        plan = (self.cfg.plan or ScenarioPlan()).clamp(self.cfg.days)
        start = self.cfg.start
        return {
            "seed": self.cfg.seed, "start": start.isoformat(), "days": self.cfg.days, "scale": self.cfg.scale,
            "scenarios": list(self.cfg.scenarios),
            "first_full_day": start.isoformat(),
            "last_day": (start + timedelta(days=self.cfg.days - 1)).isoformat(),
            "note": "Days before first_full_day hold only the history of entities still alive at the start.",
            "scenario_plan": {k: v for k, v in plan.__dict__.items()},
            "counts": {m: {d: dict(sorted(c.items())) for d, c in sorted(days.items())}
                       for m, days in sorted(self.counts.items())},
            "stocks": self.stocks,
            "anomalies": self.anomalies,
            "injected": injected(tuple(self.cfg.scenarios), plan, start),
        }

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))

    def daily_totals(self, measure: str) -> dict[str, int]:
        return {d: sum(c.values()) for d, c in sorted(self.counts.get(measure, {}).items())}
