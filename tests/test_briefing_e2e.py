"""The ministry's inbox and ops' inbox end to end: the real worker replays a simulated month from real Kafka,
sends each day's briefing by SMTP (aiosmtpd) and the alerts through the real Alertmanager, is SIGKILLed in the
middle, restarted while the mail server refuses mail, and still sends every day's briefing and the layoff
alert exactly once."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from lmis import procs
from lmis.settings import Settings
from simulator.output import read_jsonl, send_kafka
from tests.conftest import run_lmis
from tests.test_alertmanager import EMPLOYER, Mailbox, free_port

pytestmark = pytest.mark.kafka
PORT = 26366
DAYS = [f"2026-03-{d:02d}" for d in range(2, 29)]  # the 2nd (every feed flowing) to the 28th (data reach its morning)


class Refusing(Mailbox):
    refuse = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook name
        if self.refuse:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


def briefings(box: Mailbox) -> Counter:
    return Counter(m["X-LMIS-Briefing"] for m in box.messages if m["X-LMIS-Briefing"])


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def test_every_briefing_and_the_layoff_alert_arrive_once_through_a_kill_and_a_refusing_server(tmp_path, month_run):
    from aiosmtpd.controller import Controller

    box = Refusing()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {"LMIS_DATA_DIR": str(tmp_path / "data"), "LMIS_KAFKA_BOOTSTRAP": "127.0.0.1:29592",
           "LMIS_KAFKA_CONTROLLER_PORT": "29593", "LMIS_ALERTMANAGER_PORT": "29594", "LMIS_WEB_PORT": str(PORT),
           "LMIS_TOPIC_PARTITIONS": "2", "LMIS_HEALTH_INTERVAL_SECONDS": "1", "LMIS_MATCHING_ENABLED": "false",
           "LMIS_SMTP_HOST": "127.0.0.1", "LMIS_SMTP_PORT": str(smtp.port), "LMIS_SMTP_STARTTLS": "false",
           "LMIS_SMTP_FROM": "lmis@keis.or.kr", "LMIS_BRIEFING_EMAIL_TO": "desk@moel.go.kr",
           "LMIS_ALERT_EMAIL_TO": "ops@keis.or.kr", "LMIS_ALERT_GROUP_WAIT_SECONDS": "1",
           "LMIS_ALERT_GROUP_INTERVAL_SECONDS": "2"}
    run_lmis("stack", "up", env=env, timeout=300)
    worker = procs.WorkerProcess(env, tmp_path / "worker.log")
    try:
        settings = Settings(data_dir=env["LMIS_DATA_DIR"], kafka_bootstrap=env["LMIS_KAFKA_BOOTSTRAP"])
        messages = list(read_jsonl(month_run[0]))
        send_kafka(messages, settings.kafka_client_options())
        worker.start()
        worker.wait_ready()
        wait_for(lambda: len(briefings(box)) >= 5, 600, "five briefings")
        worker.kill()  # SIGKILL: no goodbye, in the middle of the replay
        box.refuse = True
        worker = procs.WorkerProcess(env, tmp_path / "worker-2.log").start()
        worker.wait_ready()
        url = f"http://127.0.0.1:{PORT}"

        def refused_once() -> bool:
            kept = httpx.get(f"{url}/api/briefings").json()["briefings"]
            return any(b["last_error"] and "451" in b["last_error"] for b in kept)

        wait_for(refused_once, 300, "a refused attempt")
        box.refuse = False
        wait_for(lambda: len(briefings(box)) >= len(DAYS), 600, "every day's briefing")
        time.sleep(15)  # anything sent twice would come now
        assert briefings(box) == Counter(dict.fromkeys(DAYS, 1))
        kept = httpx.get(f"{url}/api/briefings").json()["briefings"]
        assert sorted(b["day"] for b in kept) == DAYS and all(b["sent_at"] for b in kept)
        layoff = [m for m in box.messages if m["Subject"].startswith("[LMIS FIRING] LayoffWarning")]
        assert len(layoff) == 1, [m["Subject"] for m in box.messages if not m["X-LMIS-Briefing"]]
        assert EMPLOYER in layoff[0].get_body(("html", "plain")).get_content() and layoff[0]["To"] == "ops@keis.or.kr"
    finally:
        worker.kill()
        run_lmis("stack", "down", env=env, timeout=120, check=False)
        smtp.stop()
