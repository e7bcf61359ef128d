"""Delivery through the real Prometheus Alertmanager (built by `make setup`, started as `lmis stack up` does),
to a real SMTP server (aiosmtpd) and a local webhook receiver: what ops staff receive."""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from alerts.delivery import Outbox
from alerts.jobs import lifecycle
from alerts.model import DATA_FAULT, LABOUR_MARKET, Alert
from lmis import alertmanager
from lmis.settings import Settings
from sinks import alert_log

EMPLOYER = "E5b1f0c0a5e5e1d00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def receivers():
    from aiosmtpd.controller import Controller

    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    Webhook.received = []
    hook = ThreadingHTTPServer(("127.0.0.1", free_port()), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    yield box, smtp.port, f"http://127.0.0.1:{hook.server_address[1]}/hook"
    smtp.stop()
    hook.shutdown()


@pytest.fixture()
def manager(tmp_path, receivers):
    box, smtp_port, hook_url = receivers
    settings = Settings(data_dir=tmp_path, alertmanager_port=free_port(), smtp_host="127.0.0.1", smtp_port=smtp_port,
                        smtp_starttls=False, smtp_from="lmis@example.org", alert_email_to="analysts@example.org",
                        alert_ops_email_to="ops@example.org", alert_webhook_url=hook_url,
                        alert_group_wait_seconds=1, alert_group_interval_seconds=2)
    if not settings.alertmanager_binary.exists():
        pytest.fail(f"Alertmanager is not built at {settings.alertmanager_binary}: `make alertmanager`")
    alertmanager.up(settings, log=lambda *_: None)
    yield settings, box
    alertmanager.down(settings, log=lambda *_: None)


def wait_for(predicate, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def layoff(day: date = date(2026, 3, 13)) -> Alert:
    return Alert("LayoffWarning", LABOUR_MARKET, "warning", datetime(2026, 3, 13, 15, tzinfo=UTC), day, region="48",
                 industry="C", family="insurance", employer_id=EMPLOYER, size_band="300+", observed=36.0, expected=0.4,
                 lower=0.0, upper=10.0, detail_ko="최근 3일 사업주 사유 이직 36건",
                 detail_en="36 separations in 3 days")


def text_of(message) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_type().startswith("text/"))


def outbox(client, settings, **kw) -> Outbox:
    return Outbox(client, alertmanager.url(settings), resolve_after=timedelta(seconds=3), **kw)


def test_a_layoff_is_mailed_and_posted_firing_then_resolved_and_a_restart_sends_nothing_twice(client, manager):
    settings, box = manager
    t0 = datetime(2026, 3, 13, 15, tzinfo=UTC)
    alert_log.write(client, lifecycle([], [layoff()], "alerts.daily", t0))
    sender = outbox(client, settings)
    assert sender.tick() == 1
    mail = wait_for(lambda: [m for m in box.messages if m["To"] == "analysts@example.org"], what="the e-mail")[0]
    assert mail["Subject"].startswith("[LMIS FIRING] LayoffWarning · 경상남도")
    body = text_of(mail)
    for words in (EMPLOYER, "경상남도", "제조업", "Gyeongnam", "Manufacturing", "300+", "36", "usually 0"):
        assert words in body, words
    hook = wait_for(lambda: Webhook.received, what="the webhook")[0]
    assert hook["status"] == "firing" and hook["alerts"][0]["labels"]["employer_id"] == EMPLOYER
    assert hook["alerts"][0]["startsAt"].startswith("2026-03-13T15:00:00")

    # A restart of the worker: its new outbox finds nothing undelivered; Alertmanager sends nothing again.
    assert outbox(client, settings).tick() == 0
    # The day after the window: resolved, mailed as such.
    open_rows = alert_log.open_episodes(client, "alerts.daily")
    alert_log.write(client, lifecycle(open_rows, [], "alerts.daily", t0 + timedelta(days=3)))
    time.sleep(3.2)
    assert sender.tick() == 1
    resolved = wait_for(lambda: [m for m in box.messages if m["Subject"].startswith("[LMIS RESOLVED]")],
                        what="the resolved e-mail")
    assert EMPLOYER in text_of(resolved[0])
    wait_for(lambda: any(h["status"] == "resolved" for h in Webhook.received), what="the resolved webhook")
    time.sleep(4)  # two group intervals: nothing more arrives
    assert len([m for m in box.messages if m["To"] == "analysts@example.org"]) == 2


def test_data_faults_go_to_ops_and_a_silence_made_in_alertmanager_stops_delivery(client, manager):
    settings, box = manager
    base = alertmanager.url(settings)
    now = datetime.now(UTC)
    silence = {"matchers": [{"name": "source", "value": "albamon", "isRegex": False, "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=2)).isoformat(),
               "createdBy": "ops", "comment": "portal maintenance announced"}
    assert httpx.post(f"{base}/api/v2/silences", json=silence, timeout=5).status_code == 200
    t0 = datetime(2026, 3, 16, 2, tzinfo=UTC)
    faults = [Alert("SourceSilent", DATA_FAULT, "critical", t0, date(2026, 3, 16), source=source, family="vacancy",
                    observed=0.0, expected=30.0, detail_ko=f"{source} 수집 중단", detail_en=f"no events from {source}")
              for source in ("saramin", "albamon")]
    alert_log.write(client, lifecycle([], faults, "alerts.hourly", t0))
    assert outbox(client, settings).tick() == 2
    mail = wait_for(lambda: [m for m in box.messages if m["To"] == "ops@example.org"], what="the ops e-mail")
    time.sleep(4)
    ops = [m for m in box.messages if m["To"] == "ops@example.org"]
    assert len(ops) == 1 and "saramin" in text_of(mail[0]) and "albamon" not in text_of(ops[0])
    assert not [m for m in box.messages if m["To"] == "analysts@example.org"]
    shown = httpx.get(f"{base}/api/v2/alerts", params={"filter": 'source="albamon"'}, timeout=5).json()
    assert shown and shown[0]["status"]["state"] == "suppressed"


def test_a_data_fault_inhibits_labour_market_alerts_of_its_family(client, manager):
    settings, box = manager
    t0 = datetime(2026, 3, 16, 15, tzinfo=UTC)
    fault = Alert("SourceSilent", DATA_FAULT, "critical", t0, date(2026, 3, 16), source="saramin", family="vacancy",
                  observed=0.0, expected=30.0, detail_ko="수집 중단", detail_en="no events")
    drop = Alert("LabourMarketSpike", LABOUR_MARKET, "warning", t0, date(2026, 3, 16), "openings.posted",
                 observed=40.0, expected=120.0, lower=80.0, upper=160.0, direction="down")
    claims = Alert("LabourMarketSpike", LABOUR_MARKET, "warning", t0, date(2026, 3, 16), "ui.initial_claim",
                   observed=300.0, expected=120.0, lower=80.0, upper=160.0, direction="up")
    alert_log.write(client, lifecycle([], [fault], "alerts.hourly", t0))
    sender = outbox(client, settings)
    assert sender.tick() == 1
    wait_for(lambda: [m for m in box.messages if m["To"] == "ops@example.org"], what="the fault's e-mail")
    # (The detectors keep an alert they explain away themselves; here Alertmanager's own rule is shown.)
    alert_log.write(client, lifecycle([], [drop, claims], "alerts.daily", t0))
    assert sender.tick() == 2
    mail = wait_for(lambda: [m for m in box.messages if m["To"] == "analysts@example.org"], what="the claims e-mail")
    time.sleep(4)
    analysts = [m for m in box.messages if m["To"] == "analysts@example.org"]
    assert len(analysts) == 1 and "UI initial claims" in text_of(mail[0])
    assert "New openings posted" not in text_of(analysts[0])


def test_alertmanager_away_for_a_while_loses_nothing(client, manager, tmp_path):
    settings, box = manager
    alertmanager.down(settings, log=lambda *_: None)
    t0 = datetime(2026, 3, 13, 15, tzinfo=UTC)
    alert_log.write(client, lifecycle([], [layoff()], "alerts.daily", t0))
    sender = outbox(client, settings)
    assert sender.tick() == 0 and sender.problem and "failing since" in sender.problem
    assert sender.tick() == 0  # backing off: not even tried
    alertmanager.up(settings, log=lambda *_: None)
    delivered = wait_for(lambda: sender.tick(), timeout=20, what="the retry")
    assert delivered == 1 and sender.problem is None
    mail = wait_for(lambda: [m for m in box.messages if m["To"] == "analysts@example.org"], what="the e-mail")
    assert EMPLOYER in text_of(mail[0])


def test_the_configuration_is_generated_from_the_settings(tmp_path):
    s = Settings(data_dir=tmp_path, smtp_host="mail.example.org", smtp_username="lmis",
                 smtp_password="s3cret", alert_email_to="a@example.org", alert_repeat_hours=8)
    cfg = alertmanager.config(s)
    email_cfg = cfg["receivers"][0]["email_configs"][0]
    assert email_cfg["smarthost"] == "mail.example.org:587" and email_cfg["require_tls"] is True
    assert email_cfg["auth_password_file"].endswith("smtp-password") and "s3cret" not in json.dumps(cfg)
    assert cfg["route"]["repeat_interval"] == "8h"
    assert cfg["inhibit_rules"][0]["equal"] == ["family"]
    lay = alertmanager.write_config(s)
    assert (lay.root / "smtp-password").stat().st_mode & 0o077 == 0
    assert "s3cret" not in lay.config.read_text()
    # The site's own Alertmanager: none started here.
    assert alertmanager.up(Settings(data_dir=tmp_path, alertmanager_url="http://am.example.org:9093"),
                           log=lambda *_: None) is None
