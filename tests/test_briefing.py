"""The daily briefing as the ministry's inbox receives it: rendered from a simulated month (the real engine),
sent through a real SMTP server (aiosmtpd), parsed back, every number checked against what ``lmis
indicators`` returns, and opened in headless Chromium."""

from __future__ import annotations

import email
import json
import re
from datetime import UTC, date, datetime, timedelta
from email.policy import default as default_policy

import pytest

from briefing.delivery import Mailer, Smtp
from briefing.figures import HEADLINE, fmt_number, label
from briefing.jobs import BriefingConfig, BriefingJob, make
from schemas.calendar import seoul_midnight
from sinks import alert_log, briefing_log
from sinks.readers import indicator_table
from tests.conftest import ARTIFACTS
from tests.test_alertmanager import Mailbox, free_port
from tests.test_board_live import CHROMIUM

DAY = date(2026, 3, 17)  # the layoff's day: alerts to report


def due(day: date, hour: int = 8) -> datetime:
    return (seoul_midnight(day + timedelta(days=1)) + timedelta(hours=hour)).astimezone(UTC)


@pytest.fixture(scope="module")
def smtp_server():
    from aiosmtpd.controller import Controller

    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    yield box, server.port
    server.stop()


@pytest.fixture(scope="module")
def sent(judged, smtp_server):
    """The briefings of the 16th and 17th kept by the job (as the worker runs it) and sent."""
    client = judged[0]
    box, port = smtp_server
    cfg = BriefingConfig(lang="ko", recipients=("minister@moel.go.kr", "desk@moel.go.kr"), sender="lmis@keis.or.kr")
    job = BriefingJob(client, cfg)
    for day in (DAY - timedelta(days=1), DAY):
        job.run(due(day), due(day))
    mailer = Mailer(client, Smtp("127.0.0.1", port, "lmis@keis.or.kr", starttls=False))
    assert mailer.tick() == 2
    return client, box.messages[-1], mailer


def numbers(text: str) -> set[str]:
    return set(re.findall(r"[+-]?\d[\d,]*(?:\.\d+)?%?", text))


def test_the_briefing_arrives_with_text_and_html_parts_and_inline_charts(sent):
    _, msg, _ = sent
    assert msg["Subject"].startswith(f"{DAY} 고용동향 일일 브리핑 — 실업급여 신규신청")
    assert msg["From"] == "lmis@keis.or.kr" and msg["To"] == "minister@moel.go.kr, desk@moel.go.kr"
    assert msg["Message-ID"] == f"<briefing-{DAY}@keis.or.kr>"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "실업급여 신규신청" in text and "<table" in html
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html  # nothing external
    images = {p["Content-ID"]: p for p in msg.walk() if p.get_content_type() == "image/png"}
    assert set(images) == {"<claims>", "<supply>"}
    for cid, part in images.items():
        png = part.get_content()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert f'src="cid:{cid.strip("<>")}"' in html


def test_every_headline_number_is_what_lmis_indicators_returns(sent):
    client, msg, _ = sent
    html = msg.get_body(("html",)).get_content()
    table = {date.fromisoformat(r["day"]): r for r in indicator_table(client, DAY - timedelta(days=7), DAY)}
    for name, kind in HEADLINE:
        row = re.search(rf'data-indicator="{name}">(.*?)</tr>', html, re.S).group(1)
        assert re.search(r"data-value>([^<]+)<", row).group(1) == fmt_number(table[DAY][name], kind), name
        for key, lag in (("day_before", 1), ("week_before", 7)):
            cell = re.search(rf'data-comparison="{key}">(.*?)</td>', row, re.S).group(1)
            earlier = table[DAY - timedelta(days=lag)][name]
            assert cell.endswith(f": {fmt_number(earlier, kind)}</span>"), (name, key, cell)
            if kind == "ratio":
                assert f"{table[DAY][name] - earlier:+.2f}" in cell or abs(table[DAY][name] - earlier) < 0.005
            else:
                assert cell.startswith(f"{table[DAY][name] - earlier:+,.0f}"), (name, key, cell)
        if table[DAY].get(f"{name}_ma7") is not None:
            ma7 = re.search(r"data-ma7>([^<]+)<", row).group(1)
            assert ma7 == fmt_number(table[DAY][f"{name}_ma7"], "ratio" if kind == "ratio" else "count")


def test_the_summary_says_no_number_the_tables_do_not_hold_and_names_the_day_s_alerts(sent):
    client, msg, _ = sent
    html = msg.get_body(("html",)).get_content()
    summary = re.search(r'id="summary"[^>]*>(.*?)</div>', html, re.S).group(1)
    sentences = re.findall(r"<p[^>]*>(.*?)</p>", summary, re.S)
    assert 3 <= len(sentences) <= 6
    tables = html.replace(summary, "")
    for n in numbers(re.sub(r"<[^>]+>", " ", summary)) - {DAY.isoformat()}:
        assert n.lstrip("+-") in tables, f"the summary says {n}, which no table holds"
    claims = indicator_table(client, DAY, DAY)[0]["ui_initial_claims"]
    assert f"실업급여 신규신청은 {claims:,}건으로 전주 같은 요일" in summary
    # the day's layoff warning, delivered (not held), with the employer
    alerts = re.search(r'id="alerts".*?</table>', html, re.S).group(0)
    assert "대량 이직 조기경보" in alerts and "E5b1f0c0a5e5e1d00" in alerts


def test_a_day_is_sent_once_also_by_a_new_mailer_after_a_restart(sent, smtp_server):
    client, _, mailer = sent
    box, port = smtp_server
    before = len(box.messages)
    assert mailer.tick() == 0
    assert Mailer(client, Smtp("127.0.0.1", port, starttls=False)).tick() == 0
    BriefingJob(client, BriefingConfig(recipients=("x@y",))).run(due(DAY), due(DAY))  # a re-run keeps the first
    assert len(box.messages) == before
    states = [d["state"] for d in briefing_log.deliveries(client, DAY)]
    assert states == ["sending", "sent"]


def test_revisions_list_what_changed_since_the_last_briefing(judged):
    """A figure the previous briefing stated differently (as if late events arrived since) is listed with
    the old and the new value; the ones it stated as they are now are not."""
    from briefing.content import read

    month = judged[0]
    before = DAY - timedelta(days=1)
    previous = make(month, before, due(before), BriefingConfig())
    figures = json.loads(previous["figures"])
    true = figures[before.isoformat()]["ui_initial_claims"]
    figures[before.isoformat()]["ui_initial_claims"] = true - 5
    b = read(month, DAY, due(DAY), previous={**previous, "figures": json.dumps(figures)})
    assert [(r.day, r.name, r.old, r.new) for r in b.revisions] == [(before, "ui_initial_claims", true - 5, true)]
    assert read(month, DAY, due(DAY), previous=previous).revisions == []


def test_a_refusing_server_is_retried_with_backoff_then_alerted_to_ops_and_resolved(sent, client):
    """451 for a while: retried later (not at once), a data-fault alert once it waited long enough, and the
    day sent once, the alert resolved, when the server accepts again."""
    from aiosmtpd.controller import Controller

    month = sent[0]
    row = briefing_log.get(month, DAY)
    client.insert("briefings", [[row[c] for c in briefing_log.COLUMNS]], column_names=list(briefing_log.COLUMNS))

    class Refusing(Mailbox):
        refuse = True

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            if self.refuse:
                return "451 4.3.0 mailbox temporarily unavailable"
            return await super().handle_DATA(server, session, envelope)

    box = Refusing()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        now = [datetime(2026, 3, 18, 0, 0, tzinfo=UTC)]
        mailer = Mailer(client, Smtp("127.0.0.1", server.port, starttls=False), alert_after=timedelta(minutes=30),
                        clock=lambda: now[0])
        assert mailer.tick() == 0 and mailer.problem and "451" in mailer.problem
        assert mailer.tick() == 0 and len(briefing_log.deliveries(client, DAY)) == 2  # backing off: no attempt
        for _ in range(12):
            now[0] += timedelta(minutes=5)
            mailer.tick()
        firing = [a for a in alert_log.history(client, state="firing") if a["name"] == "BriefingUndelivered"]
        assert len(firing) == 1 and str(DAY) in firing[0]["summary_en"] and firing[0]["class"] == "data_fault"
        box.refuse = False
        now[0] += timedelta(minutes=5)
        assert mailer.tick() == 1 and len(box.messages) == 1 and mailer.problem is None
        assert [a["state"] for a in alert_log.history(client) if a["name"] == "BriefingUndelivered"] == ["resolved"]
        now[0] += timedelta(minutes=5)
        assert mailer.tick() == 0 and len(box.messages) == 1
    finally:
        server.stop()


def test_the_briefing_page_in_chromium_shows_its_tables_and_charts(sent):
    from playwright.sync_api import sync_playwright

    client = sent[0]
    page_html = briefing_log.get(client, DAY)["page"]
    path = ARTIFACTS / "briefing-ko.html"
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_text(page_html, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 800, "height": 1200})
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                       else route.continue_())
            page.goto(path.as_uri())
            assert page.locator("#headline tr[data-indicator]").count() == len(HEADLINE)
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert len(widths) == 2 and all(w > 300 for w in widths)
            assert page.locator("#title").inner_text().startswith("고용동향 일일 브리핑")
            assert label("ui_initial_claims", "ko") in page.locator("#headline").inner_text()
            page.screenshot(path=str(ARTIFACTS / "briefing-ko.png"), full_page=True)
        finally:
            browser.close()


def test_english_by_setting(judged):
    row = make(judged[0], DAY, due(DAY), BriefingConfig(lang="en"))
    msg = email.message_from_string(row["message"], policy=default_policy)
    assert msg["Subject"].startswith(f"Daily labour-market briefing, {DAY} — UI initial claims")
    text = msg.get_body(("plain",)).get_content()
    assert "UI initial claims were" in text and "Headline figures" in text and "실업급여" not in text
