"""The board served by the running worker, in a real headless Chromium (Debian's), and its API fuzzed
with schemathesis against its own OpenAPI document."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import httpx
import pytest

from dashboards.boards import BOARDS
from lmis import procs
from lmis.settings import Settings
from simulator.calibration import insured_snapshot
from simulator.output import read_jsonl, send_kafka
from sinks.insured import write_snapshot
from tests.conftest import ARTIFACTS, ROOT, run_lmis

pytestmark = pytest.mark.kafka
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PORT = 26266


def wait_caught_up(url: str, timeout: float = 900) -> None:
    """Until the event-time jobs (on their own thread, after the reading) have run every instant the visible
    clock reached: the day ends published and judged, the 08:00 briefings kept."""
    from datetime import datetime, timedelta

    from schemas.calendar import SEOUL

    deadline = time.monotonic() + timeout
    while True:
        health = httpx.get(f"{url}/api/health", params={"store": "false"}).json()
        visible = datetime.fromisoformat(health["event_time"]["visible"]).astimezone(SEOUL)
        midnight = visible.replace(hour=0, minute=0, second=0, microsecond=0)
        morning = midnight + timedelta(hours=8) - (timedelta(days=1) if visible.hour < 8 else timedelta(0))
        due = {"published.first": midnight, "alerts.daily": midnight, "briefing": morning}
        jobs = health["event_time_jobs"]
        if all(datetime.fromisoformat(jobs.get(j, {}).get("done") or "2000-01-01T00:00:00+00:00") >= t
               for j, t in due.items()):
            return
        assert time.monotonic() < deadline, (health["event_time"], jobs)
        time.sleep(2)


@pytest.fixture(scope="module")
def board_url(tmp_path_factory, month_run):
    folder = tmp_path_factory.mktemp("live")
    env = {"LMIS_DATA_DIR": str(folder / "data"), "LMIS_KAFKA_BOOTSTRAP": "127.0.0.1:29492",
           "LMIS_KAFKA_CONTROLLER_PORT": "29493", "LMIS_ALERTMANAGER_PORT": "29494",
           "LMIS_WEB_PORT": str(PORT), "LMIS_TOPIC_PARTITIONS": "2",
           "LMIS_HEALTH_INTERVAL_SECONDS": "1", "LMIS_INSURED_STOCK_FILE": str(folder / "insured.csv")}
    sim = month_run[2]
    write_snapshot(folder / "insured.csv", insured_snapshot(sim.cfg.start, sim.cfg.scale))
    run_lmis("stack", "up", env=env, timeout=300)
    worker = procs.WorkerProcess(env, folder / "worker.log")
    try:
        settings = Settings(data_dir=env["LMIS_DATA_DIR"], kafka_bootstrap=env["LMIS_KAFKA_BOOTSTRAP"])
        messages = list(read_jsonl(month_run[0]))
        send_kafka(messages, settings.kafka_client_options())
        worker.start()
        worker.wait_ready()
        procs.wait_drained(settings, worker, len(messages))
        time.sleep(2)  # a health tick after the drain
        url = f"http://127.0.0.1:{PORT}"
        deadline = time.monotonic() + 180  # the matcher (its own process, reading Kafka) and its observatory job
        drained = time.time()
        while time.monotonic() < deadline:
            live = httpx.get(f"{url}/api/matching", params={"from": "2026-03-02", "to": "2026-03-29"}).json()
            if (live["live"]["lag"] == 0 and live["live"]["status_at"] > drained and live["metrics"]
                    and live["exposure"]):
                break
            time.sleep(1)
        time.sleep(6)  # one more observatory write after the last batch
        wait_caught_up(url)
        yield url
    finally:
        worker.kill()
        run_lmis("stack", "down", env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def open_board(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    return page, errors


@pytest.mark.parametrize("board", BOARDS, ids=[b.uid for b in BOARDS])
def test_every_panel_renders_with_data_without_console_errors(board_url, browser, board):
    page, errors = open_board(browser, f"{board_url}/?board={board.uid}&from=2026-03-02&to=2026-03-29"
                              if board.time_basis == "event" else f"{board_url}/?board={board.uid}")
    states = dict(page.eval_on_selector_all("section.panel", "els => els.map(e => [e.id, e.dataset.state])"))
    assert states == {f"panel-{p.id}": "ok" for p in board.panels}
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"board-{board.uid}.png"), full_page=True)
    page.click("#lang")  # and in English, kept beside it
    page.wait_for_function("() => document.querySelector('#lang').innerText === '한국어'")
    page.wait_for_function("() => [...document.querySelectorAll('section.panel')].every(e => e.dataset.state === 'ok')")
    page.screenshot(path=str(ARTIFACTS / f"board-{board.uid}-en.png"), full_page=True)
    assert errors == []
    page.close()


def test_no_text_from_the_url_or_the_api_runs_as_script(board_url, browser):
    """The API's 422 echoes the bad input; the board shows it as text. (It ran as script when error text went
    in as HTML markup, and read the token from the page's storage.)"""
    attack = "<img src=x onerror=window.__xss=1>"
    page = browser.new_page()
    page.goto(f"{board_url}/?board=lmis-national&to=2026-03-29&from={attack}&lang={attack}")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    states = page.eval_on_selector_all("section.panel", "els => els.map(e => e.dataset.state)")
    assert states and set(states) == {"error"}
    assert attack in page.inner_text("#panels")  # shown, as text
    assert page.evaluate("window.__xss") is None and page.query_selector("#panels img") is None
    assert page.inner_text("h1") == "고용동향 모니터링 현황판"  # an unknown language is Korean
    page.close()


def test_the_drill_down_changes_the_numbers(board_url, browser):
    page, errors = open_board(browser, f"{board_url}/?board=lmis-region&from=2026-03-02&to=2026-03-29")
    before = page.inner_text("#panel-region_industries .body")
    page.select_option("#var-region", "48")
    page.wait_for_function(
        "before => document.querySelector('#panel-region_industries .body').innerText !== before", arg=before,
        timeout=30_000)
    assert page.inner_text("#panel-region_industries .body") != before
    assert errors == []
    page.close()


def test_korean_labels_with_an_english_switch(board_url, browser):
    page, errors = open_board(browser, f"{board_url}/?board=lmis-national&from=2026-03-02&to=2026-03-29")
    assert page.inner_text("h1") == "고용동향 모니터링 현황판"
    assert "경상남도" in page.inner_text("#panel-regions")
    # The event time the numbers hold: the month's last day, in Asia/Seoul (its last hour, or the quietest
    # partition's last message).
    assert page.inner_text("#updated").startswith("자료 기준 2026-03-29 2"), page.inner_text("#updated")
    # The published figures' measures by name, in the table's second column (after the day).
    assert "실업급여 신규신청" in page.inner_text("#panel-revisions")
    page.click("#lang")
    page.wait_for_function("() => document.querySelector('h1').innerText === 'Employment trend monitoring board'")
    page.wait_for_function("() => document.querySelector('#panel-regions').innerText.includes('Gyeongnam')")
    assert errors == []
    page.close()


def test_the_headline_is_the_last_complete_day_with_its_changes_and_says_missing_apart_from_suppressed(
        board_url, browser):
    """Opened without dates, the board's headline is the last day whose end the data hold (the 28th: the
    data go into the 29th), with signed changes and percentages; the year before the simulated month is
    missing ("—"), never "<3", and "<3" appears only in rows counting persons."""
    page, errors = open_board(browser, f"{board_url}/?board=lmis-national")
    assert page.inner_text("#panel-headline .headline-day") == "기준일 2026-03-28 (최근 완결일)"
    rows = page.eval_on_selector_all("#panel-headline tbody tr", """els => els.map(e => ({
        unit: e.dataset.unit, cells: [...e.querySelectorAll('td')].map(td => td.innerText)}))""")
    assert len(rows) == 10 and all(len(r["cells"]) == 7 for r in rows)
    assert all(r["cells"][6] == "—" for r in rows)  # 52 weeks earlier: before the data
    assert all("<3" not in r["cells"] for r in rows if r["unit"] != "persons")
    day_before = [r["cells"][4] for r in rows if r["unit"] != "ratio"]
    assert all(re.fullmatch(r"[+−±][\d,]+ \([+−±][\d.,]+%\)|[+−±][\d,]+|—", c) for c in day_before), day_before
    assert any(c != "—" for c in day_before)
    headers = page.inner_text("#panel-headline thead")
    assert "전일 대비" in headers and "7일 평균" in headers and "4주 평균" in headers and "vs" not in headers
    # Every indicator's definition: its formula and its source, on a click.
    stock = "#panel-headline tr[data-indicator='ratio.stock_offers_to_seekers']"
    assert page.is_hidden(f"{stock} .definition")
    page.click(f"{stock} button.info")
    definition = page.inner_text(f"{stock} .definition")
    assert "유효 구인인원 ÷" in definition and "一般職業紹介状況" in definition and "출처" in definition
    assert all(page.get_attribute(f"#panel-headline tr[data-indicator='{k}'] button.info", "title")
               for k in ("ui.initial_claim", "openings.posted", "ratio.offers_to_seekers"))
    assert errors == []
    page.close()


def test_charts_an_official_can_read(board_url, browser):
    """Legends with visible colour keys, one colour per measure on every board, the values on the bars on
    one scale, dates as 3/8 and the legend in Korean in the Korean view, and the month's public holiday
    (the substitute holiday of 2026-03-02) shaded on the time axis."""
    page, errors = open_board(browser, f"{board_url}/?board=lmis-national&from=2026-03-02&to=2026-03-29")
    keys = page.eval_on_selector_all("#panel-industries .legend .key", """els => els.map(e => {
        const s = e.querySelector('.swatch'); const r = s.getBoundingClientRect();
        return [e.dataset.measure, getComputedStyle(s).backgroundColor, r.width, r.height]; })""")
    assert keys and all(w >= 10 and h >= 10 and colour != "rgba(0, 0, 0, 0)" for _, colour, w, h in keys), keys
    national = {m: colour for m, colour, _, _ in keys}
    values = page.eval_on_selector_all("#panel-industries .barvalue", "els => els.map(e => e.innerText)")
    assert values and all(re.fullmatch(r"[\d,]+|<3|—", v) for v in values) and any(v not in ("<3", "—", "0")
                                                                                   for v in values)
    trend = page.inner_text("#panel-trend_ui")
    assert "날짜" in trend and "Time" not in trend, trend[:300]
    ticks = page.get_attribute("#panel-trend_ui .body", "data-xticks").split()
    assert ticks and all(re.fullmatch(r"3/\d{1,2}", t) for t in ticks), ticks
    assert page.get_attribute("#panel-trend_ui .body", "data-holidays") == "1"
    assert page.get_attribute("#panel-trend_ui .body", "data-ylabel") == "7일 평균 (명)"  # the unit on the axis
    assert page.get_attribute("#panel-trend_openings .body", "data-ylabel") == "7일 평균 (명(구인))"
    assert errors == []
    # A comparison with a public holiday on one side only is marked, and says which day: 3/9 against 3/2
    # (the substitute holiday), not against 3/8.
    marked, errors = open_board(browser, f"{board_url}/?board=lmis-national&from=2026-03-02&to=2026-03-09")
    week = marked.eval_on_selector_all("#panel-headline td.change[data-lag='7d']", """els => els.map(e =>
        [e.dataset.holiday, e.innerText, e.title])""")
    assert week and all(h == "yes" and t.endswith("†") and title == "2026-03-02 공휴일" for h, t, title in week
                        if t != "—"), week
    assert marked.eval_on_selector_all("#panel-headline td.change[data-lag='1d']",
                                       "els => els.filter(e => e.dataset.holiday === 'yes').length") == 0
    assert errors == []
    marked.close()
    # The pipeline board: a line per source in the sources' time, its axis over the data, units on the axes.
    pipeline, errors = open_board(browser, f"{board_url}/?board=lmis-pipeline")
    pipeline.wait_for_function("() => document.getElementById('panel-source_volumes').dataset.state === 'ok'")
    legend = pipeline.inner_text("#panel-source_volumes")
    assert all(name in legend for name in ("워크넷", "사람인", "고용센터")) and "saramin" not in legend, legend[:300]
    assert pipeline.get_attribute("#panel-source_volumes .body", "data-ylabel") == "수신 (메시지)"
    assert pipeline.get_attribute("#panel-freshness .body", "data-ylabel") == "p50 (초)"
    ticks = pipeline.get_attribute("#panel-source_volumes .body", "data-xticks")
    assert re.search(r"3\.\s?2[2-9]|3/2[2-9]", ticks), ticks  # the sources' last week, not the wall clock's
    assert errors == []
    pipeline.close()
    region, errors = open_board(browser, f"{board_url}/?board=lmis-region&from=2026-03-02&to=2026-03-29&region=48")
    keys = region.eval_on_selector_all("#panel-region_industries .legend .key", """els => els.map(e =>
        [e.dataset.measure, getComputedStyle(e.querySelector('.swatch')).backgroundColor])""")
    assert keys and all(national[m] == colour for m, colour in keys if m in national)
    assert errors == []
    page.close()
    region.close()


def test_the_worker_alerts_on_the_layoff_and_the_outage_and_the_board_lists_them(board_url, browser):
    """The worker's own event-time jobs judged the month as it streamed in: the layoff and the portal's
    outage are on the alerts page, in Korean and English; the banner counts what fires now."""
    alerts = httpx.get(f"{board_url}/api/alerts").json()["alerts"]
    layoff = [a for a in alerts if a["name"] == "LayoffWarning"]
    assert len(layoff) == 1 and layoff[0]["labels"]["region"] == "48" and layoff[0]["employer_id"]
    assert {a["source"] for a in alerts if a["name"] == "SourceSilent"} == {"saramin"}
    assert {a["source"] for a in alerts if a["name"] == "DuplicateBurst"} == {"jobkorea"}
    page, errors = open_board(browser, f"{board_url}/?page=alerts")
    row = page.inner_text(f"[id='{layoff[0]['fingerprint']}']")
    assert layoff[0]["employer_id"] in row and "경상남도" in row and "노동시장 신호" in row
    assert "saramin" in page.inner_text("#alerts-page") and "자료 장애" in page.inner_text("#alerts-page")
    firing = [a for a in httpx.get(f"{board_url}/api/alerts", params={"state": "firing"}).json()["alerts"]
              if not a["inhibited_by"]]
    banner = page.query_selector("#alerts-banner")
    assert banner.is_visible() == bool(firing)
    if firing:
        assert page.get_attribute("#alerts-banner", "data-count") == str(len(firing))
    page.click("#lang")
    page.wait_for_function("() => document.querySelector('h1').innerText === 'LMIS · Alerts'")
    page.wait_for_function("f => (document.getElementById(f)?.innerText || '').includes('Gyeongnam')",
                           arg=layoff[0]["fingerprint"])
    page.screenshot(path=str(ARTIFACTS / "board-alerts.png"), full_page=True)
    assert errors == []
    page.close()


def test_the_worker_keeps_a_briefing_each_morning_browsable_on_the_board_and_by_lmis_briefing(board_url, browser):
    """The worker's 08:00 event-time job over the month: a briefing for every day from the first on which
    every headline feed flowed (the 2nd) to the last whose next morning the data reach (the 28th)."""
    kept = httpx.get(f"{board_url}/api/briefings").json()["briefings"]
    assert [b["day"] for b in kept] == [f"2026-03-{d:02d}" for d in range(28, 1, -1)]
    assert all(b["sent_at"] is None and b["recipients"] == 0 for b in kept)  # no recipients set: archived only
    page = httpx.get(f"{board_url}/api/briefings/2026-03-17")
    assert page.status_code == 200 and "고용동향 일일 브리핑 · 2026-03-17" in page.text and "<script" not in page.text
    assert httpx.get(f"{board_url}/api/briefings/2026-04-30").status_code == 404
    board, errors = open_board(browser, f"{board_url}/?page=briefings")
    rows = board.query_selector_all("#briefings-page tbody tr")
    assert len(rows) == 27 and "2026-03-28" in rows[0].inner_text()
    assert board.get_attribute("#briefings-page tbody tr a", "href") == "/api/briefings/2026-03-28"
    board.screenshot(path=str(ARTIFACTS / "board-briefings.png"), full_page=True)
    assert errors == []
    board.close()
    env = {"LMIS_WEB_PORT": str(PORT)}
    text = run_lmis("briefing", "--date", "2026-03-17", "--lang", "en", env=env).stdout
    assert text.startswith("Daily labour-market briefing, 2026-03-17 — UI initial claims")
    claims = httpx.get(f"{board_url}/api/indicators", params={"from": "2026-03-17", "to": "2026-03-17"}
                       ).json()["rows"][0]["ui_initial_claims"]
    assert f"UI initial claims were {claims:,}" in text


def test_the_api_is_the_same_numbers_as_lmis_indicators(board_url):
    rows = httpx.get(f"{board_url}/api/indicators", params={"from": "2026-03-02", "to": "2026-03-08",
                                                            "by": "day,region"}).json()["rows"]
    assert len(rows) == 7 * 17
    csv = httpx.get(f"{board_url}/api/indicators", params={"from": "2026-03-02", "to": "2026-03-08",
                                                           "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\n") == 8
    # The figures as published at each day's end and as final, beside today's: the final ones stand.
    revised = httpx.get(f"{board_url}/api/revisions", params={"from": "2026-03-02", "to": "2026-03-20"}).json()
    national = [r for r in revised["rows"] if r["region"] == ""]
    # (A figure is null when it was not published, or when it is a count of 1 or 2 persons: suppressed.)
    assert len({r["day"] for r in national}) == 19 and all(r["first_as_of"] is not None for r in national)
    assert all(r["first"] is not None for r in national if r["measure"] == "openings.posted")  # never persons
    assert all(r["final"] == r["now"] for r in national)
    # Taken once the aggregates held the day's end (final: its end and the lateness); a replay at full
    # speed gets past it further than live.
    assert all(r["first_as_of"] >= f"{r['day']}T15" and r["final_as_of"] >= r["first_as_of"] for r in national)
    bad = httpx.get(f"{board_url}/api/indicators", params={"from": "2026-03-09", "to": "2026-03-02"})
    assert bad.status_code == 400 and "after" in bad.json()["detail"]
    bad = httpx.get(f"{board_url}/api/boards/lmis-region/panels/region_series",
                    params={"from": "2026-03-02", "to": "2026-03-09", "region": "99"})
    assert bad.status_code == 422 and "region" in bad.text  # the OpenAPI pattern names the parameter


def test_the_api_survives_schemathesis_fuzzing(board_url, tmp_path):
    report = tmp_path / "schemathesis.txt"
    res = subprocess.run(
        [str(ROOT / ".venv-fuzz" / "bin" / "schemathesis"), "run", f"{board_url}/openapi.json",
         "--checks", "all", "--max-examples", "20", "--workers", "1", "--request-timeout", "60"],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    report.write_text(res.stdout + res.stderr)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text(res.stdout + res.stderr)
    assert res.returncode == 0, res.stdout[-4000:]
