"""The briefings kept by the job, sent by SMTP: each day once. Before each attempt a ``sending`` row, after
the server's acceptance a ``sent`` row (``sinks.briefing_log``); a day with ``sent`` is never sent again,
across restarts and replays. A crash between the server's acceptance and the ``sent`` row sends that day
again on restart, with the same Message-ID (mail clients show it once).

A refused or unreachable server is retried with back-off (1 s doubling to 5 min); once a briefing has
waited ``alert_after``, a data-fault alert (``BriefingUndelivered``) goes to ops through the alerts'
outbox, and resolves when it is sent."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alerts.jobs import lifecycle
from alerts.model import DATA_FAULT, Alert
from sinks import alert_log, briefing_log

log = logging.getLogger("lmis.briefing")
JOB = "briefing.delivery"


@dataclass(frozen=True)
class Smtp:
    host: str | None
    port: int = 587
    sender: str = "lmis@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ssl: bool = False
    timeout_s: float = 30.0

    def send(self, raw: str, recipients: list[str]) -> None:
        """One SMTP transaction; raises on any refusal (smtplib.SMTPException) or network error (OSError)."""
        if not self.host:
            raise smtplib.SMTPException("no SMTP server configured (LMIS_SMTP_HOST)")
        context = ssl.create_default_context()
        cls = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        kwargs = {"context": context} if self.ssl else {}
        with cls(self.host, self.port, timeout=self.timeout_s, **kwargs) as server:
            if self.starttls and not self.ssl:
                server.starttls(context=context)
            if self.username:
                server.login(self.username, self.password or "")
            server.sendmail(self.sender, recipients, raw)  # 7-bit (quoted-printable, base64): CRLF-ed by smtplib


class Mailer:
    """``tick()`` sends the kept briefings not sent yet, oldest first; returns how many were sent."""

    def __init__(self, client, smtp: Smtp, alert_after: timedelta = timedelta(minutes=30),
                 clock=lambda: datetime.now(UTC)):
        self.client, self.smtp, self.alert_after, self.clock = client, smtp, alert_after, clock
        self.failing_since: datetime | None = None
        self.error: str | None = None
        self._retry_at: datetime | None = None
        self._backoff = timedelta(seconds=1)

    def tick(self) -> int:
        now = self.clock()
        if self._retry_at is not None and now < self._retry_at:
            return 0
        sent = 0
        for row in briefing_log.unsent(self.client):
            attempt = int(row["attempts"]) + 1
            briefing_log.record(self.client, row["day"], briefing_log.SENDING, attempt, now)
            try:
                self.smtp.send(row["message"], [a.strip() for a in row["recipients"].split(",") if a.strip()])
            except (smtplib.SMTPException, OSError) as exc:
                self._failed(row["day"], attempt, now, exc)
                return sent
            briefing_log.record(self.client, row["day"], briefing_log.SENT, attempt, self.clock())
            log.info("briefing of %s sent to %s (attempt %d)", row["day"], row["recipients"], attempt)
            sent += 1
        if self.failing_since is not None or sent:
            self._alert(now, None)  # resolves an alert raised before
        self.failing_since, self.error, self._retry_at, self._backoff = None, None, None, timedelta(seconds=1)
        return sent

    def _failed(self, day, attempt: int, now: datetime, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.failing_since = self.failing_since or now
        briefing_log.record(self.client, day, briefing_log.FAILED, attempt, now, self.error[:1000])
        self._retry_at = now + self._backoff
        log.warning("briefing of %s not sent (attempt %d): %s; retried in %s", day, attempt, self.error,
                    self._backoff)
        self._backoff = min(self._backoff * 2, timedelta(minutes=5))
        if now - self.failing_since >= self.alert_after:
            self._alert(now, day)

    def _alert(self, now: datetime, day) -> None:
        found = []
        if day is not None:
            since = self.failing_since.isoformat(timespec="minutes")
            found.append(Alert(
                name="BriefingUndelivered", cls=DATA_FAULT, severity="critical", first_seen=self.failing_since,
                day=day, source="smtp",
                detail_ko=f"{day} 일일 브리핑을 {since}부터 보내지 못함 ({self.smtp.host}): {self.error}",
                detail_en=f"the daily briefing of {day} could not be sent since {since} ({self.smtp.host}): "
                          f"{self.error}"))
        rows = lifecycle(alert_log.open_episodes(self.client, JOB), found, JOB, now)
        alert_log.write(self.client, rows)

    @property
    def problem(self) -> str | None:
        """For the worker's health: sending failing since when."""
        if self.failing_since is None:
            return None
        return f"sending the briefing failing since {self.failing_since.isoformat()}: {self.error}"
