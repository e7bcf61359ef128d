"""Alerts to Prometheus Alertmanager (its v2 API): the outbox of what the detectors stored.

Alertmanager groups, deduplicates, repeats, inhibits, silences and delivers; this only hands it each
episode's state. What it has been given is recorded in ClickHouse (``alert_deliveries``): a restart hands
over only what was not, and an Alertmanager away keeps everything waiting, retried with back-off. An alert
is known to Alertmanager by its labels (stable per condition), so handing the same one over twice (a crash
between the hand-over and its record) notifies nobody twice.

Firing alerts are handed over again every ``refresh`` with an end ``4 × refresh`` ahead, as Prometheus
does: if the worker stops for good, Alertmanager resolves them itself. A resolved episode whose firing
state was never handed over is first handed over firing, and resolved ``resolve_after`` later (Alertmanager
notifies no resolution of an alert it never notified firing).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx

from sinks import alert_log
from sinks.alert_log import FIRING, RESOLVED

log = logging.getLogger("lmis.alerts")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Outbox:
    """``tick()`` hands the undelivered episodes to the Alertmanager at ``url``; returns how many."""

    def __init__(self, client, url: str, refresh: timedelta = timedelta(minutes=5),
                 resolve_after: timedelta = timedelta(seconds=45), timeout_s: float = 10.0,
                 board_url: str = "", clock=lambda: datetime.now(UTC)):
        self.client, self.url, self.refresh, self.resolve_after = client, url.rstrip("/"), refresh, resolve_after
        self.timeout_s, self.board_url, self.clock = timeout_s, board_url, clock
        self.failing_since: datetime | None = None
        self.error: str | None = None
        self._retry_at: datetime | None = None
        self._backoff = timedelta(seconds=1)

    def _payload(self, row: dict, state: str, now: datetime) -> dict:
        ends = row["ends_at"] if state == RESOLVED else now + 4 * self.refresh
        return {"labels": json.loads(row["labels"]), "annotations": json.loads(row["annotations"]),
                "startsAt": _iso(row["starts_at"]), "endsAt": _iso(max(ends, row["starts_at"])),
                "generatorURL": f"{self.board_url}/?page=alerts#{row['fingerprint']}" if self.board_url else ""}

    def tick(self) -> int:
        now = self.clock()
        if self._retry_at is not None and now < self._retry_at:
            return 0
        rows = alert_log.undelivered(self.client, now - self.refresh)
        batch, done = [], []
        for row in rows:
            if row["state"] == RESOLVED and row["firing_delivered_at"] is None:
                state = FIRING  # notify it firing first
            elif row["state"] == RESOLVED and now - row["firing_delivered_at"] < self.resolve_after:
                continue
            else:
                state = row["state"]
            batch.append(self._payload(row, state, now))
            done.append((row["fingerprint"], row["starts_at"], state))
        if not batch:
            return 0
        try:
            response = httpx.post(f"{self.url}/api/v2/alerts", json=batch, timeout=self.timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failing_since = self.failing_since or now
            self.error = f"{type(exc).__name__}: {exc}"
            self._retry_at = now + self._backoff
            self._backoff = min(self._backoff * 2, timedelta(minutes=5))
            log.warning("Alertmanager at %s refused %d alerts (%s); retried in %s", self.url, len(batch), self.error,
                        self._backoff)
            return 0
        alert_log.delivered(self.client, done, now)
        self.failing_since, self.error, self._retry_at, self._backoff = None, None, None, timedelta(seconds=1)
        return len(batch)

    @property
    def problem(self) -> str | None:
        """For the worker's health: Alertmanager unreachable since when."""
        if self.failing_since is None:
            return None
        return f"delivering alerts to {self.url} failing since {self.failing_since.isoformat()}: {self.error}"
