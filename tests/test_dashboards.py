"""Board definitions, rendered for Grafana and run on ClickHouse.

No Grafana server runs on these machines: these are contract tests. Every panel's SQL runs on the real
ClickHouse engine (chdb) over a simulated month with the plugin's macros expanded as the plugin expands
them; the Grafana JSON loads back into grafana-foundation-sdk's models; the push is tested against a
recording of Grafana's documented HTTP API (a recording, not Grafana).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from dashboards import panels
from dashboards.boards import BOARDS, HEADLINE_COLUMNS, NATIONAL, REGION, SMALL_CELL, labels
from dashboards.grafana import DATASOURCE_UID, dashboard_json, export_provisioning, load_back, push
from dashboards.macros import ALL, QueryContext, expand
from schemas.calendar import SEOUL
from sinks.indicators import offers_to_seekers_ratio, stock_offers_to_seekers_ratio
from sinks.rollups import HEADLINE
from streams.matching import Matcher
from streams.matching_service import MatchingService
from streams.pipeline import TrendPipeline
from tests.conftest import run_lmis
from tests.test_pipeline import as_records, run

FROM, TO = date(2026, 3, 2), date(2026, 3, 29)


@pytest.fixture(scope="module")
def board_db(engine_dsn, month_run):
    import uuid

    from simulator.calibration import insured_snapshot
    from simulator.output import read_jsonl
    from sinks.clickhouse import connect, migrate
    from sinks.insured import load_snapshot

    client = connect(engine_dsn, database=f"b_{uuid.uuid4().hex[:10]}")
    migrate(client)
    load_snapshot(client, insured_snapshot(FROM, 0.01))
    matching = MatchingService(client, Path("/nonexistent/not-checkpointed"), Matcher(seed=0))
    run(TrendPipeline(client, observers=[matching]), as_records(read_jsonl(month_run[0])))
    assert matching.write_observatory() > 20
    # Each day's figures as published (at its end, and final); the worker's event-time jobs do this live.
    from sinks.published import publish_day

    for k in range(28):
        day = FROM + timedelta(days=k)
        at = datetime(day.year, day.month, day.day, 15, tzinfo=UTC)
        publish_day(client, day, "first", at, at, f"first:{day}")
        if k < 20:
            publish_day(client, day, "final", at + timedelta(days=3), at + timedelta(days=3), f"final:{day}")
    return client


def kind_of(ch_type: str) -> str:
    t = re.sub(r"^(Nullable|LowCardinality)\((.*)\)$", r"\2", ch_type)
    t = re.sub(r"^(Nullable|LowCardinality)\((.*)\)$", r"\2", t)
    if t.startswith("DateTime"):
        return "time"
    if re.match(r"^(U?Int|Float|Decimal)", t):
        return "number"
    return "string"  # String, Date, Nothing (an all-NULL column)


def test_macros_expand_as_the_plugin_does():
    ctx = QueryContext(datetime(2026, 3, 1, 15, tzinfo=UTC), datetime(2026, 3, 2, 15, tzinfo=UTC), 3600,
                       {"region": ["11", "48"], "industry": [ALL]})
    assert expand("$__timeFilter(ts)", ctx) == "ts >= toDateTime(1772377200) AND ts <= toDateTime(1772463600)"
    assert expand("$__timeFilter_ms(ts)", ctx) == (
        "ts >= fromUnixTimestamp64Milli(1772377200000) AND ts <= fromUnixTimestamp64Milli(1772463600000)")
    assert expand("$__dateFilter(d)", ctx) == "d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')"
    assert expand("$__fromTime $__toTime", ctx) == "toDateTime(1772377200) toDateTime(1772463600)"
    assert expand("$__timeInterval(ts)", ctx) == "toStartOfInterval(toDateTime(ts), INTERVAL 3600 second)"
    assert expand("$__interval_s", ctx) == "3600"
    assert expand("$__conditionalAll(r IN (${region:singlequote}), $region)", ctx) == "r IN ('11','48')"
    assert expand("$__conditionalAll(i IN (${industry:singlequote}), $industry)", ctx) == "1=1"
    assert expand("${region:singlequote}", QueryContext(ctx.time_from, ctx.time_to, 60,
                                                          {"region": ["a'b"]})) == "'a\\'b'"
    with pytest.raises(ValueError):
        expand("$__unknownMacro(x)", ctx)


@pytest.mark.parametrize(("board", "panel"), [(b, p) for b in BOARDS for p in b.panels],
                         ids=[f"{b.uid}/{p.id}" for b in BOARDS for p in b.panels])
def test_every_panel_runs_with_the_plugins_macros_and_returns_its_columns(board_db, board, panel):
    variable_sets = [{}]
    lo, hi = FROM, TO
    if board.uid == "lmis-pipeline":  # health is written by a running worker, in processing time
        lo = hi = datetime.now(SEOUL).date()  # the board's days are Asia/Seoul days (UTC lags until 09:00 KST)
        _health_tick(board_db)
    if board.variables:
        variable_sets = [{}, {"region": ["48"]}, {"region": ["11", "41"], "industry": ["C"], "occupation": ["85"]}]
    for variables in variable_sets:
        data = panels.run(board_db, board, panel, lo, hi, variables)
        names = [c["name"] for c in data["columns"]]
        assert names == [n for n, _ in panel.columns], (panel.id, names)
        kinds = [kind_of(c["type"]) for c in data["columns"]]
        assert kinds == [k for _, k in panel.columns], (panel.id, [c["type"] for c in data["columns"]])
        if panel.format == "time_series":
            assert kinds[0] == "time", "a time-series panel's first column must be its time"
        if panel.id != "late_duplicates":  # late and duplicate events are by event day, not processing day
            assert data["rows"], f"{panel.id} returned no rows for {variables}"


DATA_THROUGH = datetime(2026, 3, 19, tzinfo=UTC)  # the sources' time a worker's health ticks report


def _health_tick(client, fresh_events: int = 500) -> None:
    client.insert("pipeline_health", [[datetime.now(UTC), "lmis.seekers", 12, 500, 100.0, 3, 1, 0.4, 1.2,
                                       DATA_THROUGH, fresh_events]],
                  column_names=["ts", "topic", "lag", "events", "events_per_s", "dead_letters", "too_late",
                                "freshness_p50_s", "freshness_p99_s", "event_time", "fresh_events"])


def test_the_pipeline_board_shows_each_source_and_the_one_that_fell_silent(board_db, month_run):
    """Messages per source and hour over the 7 days up to the data's time: the sum is every message sent then,
    and saramin's 36-hour outage (from 3/16 09:00 KST) is a gap in its line while the other sources go on."""
    from dashboards.boards import PIPELINE

    _health_tick(board_db)
    panel = next(p for p in PIPELINE.panels if p.id == "source_volumes")
    assert panel.time_axis == "data" and panel.y_unit == "messages"
    today = datetime.now(SEOUL).date()
    data = panels.run(board_db, PIPELINE, panel, today, today, {})
    counts = {(t, s): n for t, s, n in data["rows"]}
    (expected,), = board_db.query(
        "SELECT count() FROM events WHERE emitted_at > toDateTime64('2026-03-12 00:00:00', 3, 'UTC') "
        "AND emitted_at <= toDateTime64('2026-03-19 00:00:00', 3, 'UTC')").result_rows
    assert sum(counts.values()) == expected > 1000
    assert {s for _, s in counts} >= {"worknet", "saramin", "jobkorea", "job-centre", "ei-db"}
    lo = datetime(2026, 3, 16, 9, tzinfo=SEOUL).timestamp() * 1000
    hi = lo + 36 * 3_600_000
    during = Counter(s for (t, s), n in counts.items() if lo <= t < hi for _ in range(n))
    assert during["saramin"] == 0 and sum(during.values()) > 100, during
    assert sum(n for (t, s), n in counts.items() if s == "saramin" and t < lo) > 10


def test_the_drill_down_changes_the_numbers(board_db):
    panel = REGION.panels[0]
    everywhere = panels.run(board_db, REGION, panel, FROM, TO, {})
    gyeongnam = panels.run(board_db, REGION, panel, FROM, TO, {"region": ["48"]})
    total = sum(r[2] or 0 for r in everywhere["rows"])
    part = sum(r[2] or 0 for r in gyeongnam["rows"])
    assert 0 < part < total


PERSON_COLUMNS = {"ui_initial_claims", "new_job_seekers", "hires", "value"}


def test_small_cells_are_suppressed(board_db):
    seen_suppressed = False
    for variables in ({"region": ["36"]}, {"region": ["50"], "industry": ["A"]}):
        for p in REGION.panels:
            data = panels.run(board_db, REGION, p, FROM, TO, variables)
            names = [c["name"] for c in data["columns"]]
            for row in data["rows"]:
                if dict(zip(names, row, strict=True)).get("unit", "persons") != "persons":
                    continue  # a headline row of openings or a ratio
                for name, value in zip(names, row, strict=True):
                    if name not in PERSON_COLUMNS:
                        continue
                    assert value is None or not 0 < value < SMALL_CELL, (p.id, row)
                    seen_suppressed |= value is None
    assert seen_suppressed, "a small region's daily counts must include suppressed cells"


def _day_total(client, measure: str, day: date) -> int:
    return client.query(f"SELECT sum(value) FROM measures_daily WHERE measure = '{measure}' "
                        f"AND day = toDate('{day.isoformat()}')").result_rows[0][0]


def test_headline_matches_every_cell_of_the_rollup(board_db):
    """The last day's value, 7-day average, and change and % against the day before, a week and 52 weeks
    earlier, each from the rollup's cells; the year before the simulated month is missing (null, shown
    "—"), not suppressed."""
    data = panels.run(board_db, NATIONAL, NATIONAL.panels[0], FROM, TO, {})
    names = [c["name"] for c in data["columns"]]
    assert names == [n for n, _ in HEADLINE_COLUMNS]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in data["rows"]}
    assert list(rows) == [k for k, _, _ in HEADLINE]
    assert {k: r["unit"] for k, r in rows.items()}["ui.initial_claim"] == "persons"
    assert rows["ratio.offers_to_seekers"]["unit"] == "ratio" and rows["openings.posted"]["unit"] == "openings"

    def shown(v: float) -> float | None:
        return None if 0 < v < SMALL_CELL else v

    claims = {k: _day_total(board_db, "ui.initial_claim", TO - timedelta(days=k)) for k in range(8)}
    headline = rows["ui.initial_claim"]
    assert headline["value"] == shown(claims[0])
    assert headline["ma7"] == round(sum(claims[k] for k in range(7)) / 7, 1)
    month = sum(_day_total(board_db, "ui.initial_claim", TO - timedelta(days=k)) for k in range(28))
    assert headline["ma28"] == round(month / 28, 1)  # the 4-week average
    for lag, k in (("1d", 1), ("7d", 7)):  # a change from or to a suppressed count is not given either
        now, base = shown(claims[0]), shown(claims[k])
        assert headline[f"change_{lag}"] == (None if now is None or base is None else now - base)
        assert headline[f"pct_{lag}"] == (None if now is None or not base else round(100 * (now - base) / base, 1))
    assert headline["change_364d"] is None and headline["pct_364d"] is None  # no data a year earlier
    openings = {k: _day_total(board_db, "openings.posted", TO - timedelta(days=k)) for k in (0, 1, 7)}
    assert rows["openings.posted"]["value"] == openings[0]  # not persons: never suppressed
    assert rows["openings.posted"]["change_7d"] == openings[0] - openings[7]
    assert rows["openings.posted"]["pct_1d"] == round(100 * (openings[0] - openings[1]) / openings[1], 1)
    for column, day in (("value", TO),):
        flow = offers_to_seekers_ratio(_day_total(board_db, "openings.posted", day),
                                       _day_total(board_db, "seeker.registered", day))
        stock = stock_offers_to_seekers_ratio(_day_total(board_db, "stock.open_openings", day),
                                              _day_total(board_db, "stock.active_seekers", day))
        assert rows["ratio.offers_to_seekers"][column] == round(flow, 3)
        assert rows["ratio.stock_offers_to_seekers"][column] == round(stock, 3)
    assert rows["ratio.offers_to_seekers"]["ma7"] is None  # an average of daily ratios is not a ratio


def _cells(client, dimension: str | None, measure: str, variables: dict[str, list[str]]) -> dict:
    """The expected breakdown, from every cell of daily_measures (through the measures_daily view)."""
    where = " ".join(f"AND {k} IN ({', '.join(repr(v) for v in vs)})" for k, vs in variables.items())
    key = dimension or "toString(day)"
    extra = f"AND {dimension} != ''" if dimension else ""
    rows = client.query(f"SELECT {key}, sum(value) FROM measures_daily WHERE measure = '{measure}' "
                        f"AND day BETWEEN toDate('{FROM}') AND toDate('{TO}') {extra} {where} "
                        f"GROUP BY {key}").result_rows
    return {k: (None if 0 < v < SMALL_CELL else v) for k, v in rows}


@pytest.mark.parametrize("variables", [{}, {"region": ["48"]}, {"region": ["11", "41"]}, {"occupation": ["85"]},
                                       {"industry": ["C"]}, {"region": ["41"], "industry": ["C", "G"]},
                                       {"region": ["11"], "industry": ["C"], "occupation": ["85"]}],
                         ids=lambda v: ",".join(f"{k}={'+'.join(x)}" for k, x in v.items()) or "all")
def test_breakdowns_from_rollup_products_equal_every_cell(board_db, variables):
    # The panels read the per-dimension and per-region tables when they can and every cell otherwise:
    # whichever branch the variables pick, the numbers are those of daily_measures.
    for panel_id, dimension in (("region_industries", "industry"), ("region_occupations", "occupation")):
        _, panel = panels.find("lmis-region", panel_id)
        data = panels.run(board_db, REGION, panel, FROM, TO, variables)
        got = {r[0]: r[1] for r in data["rows"]}  # ui_initial_claims
        expected = {k: v for k, v in _cells(board_db, dimension, "ui.initial_claim", variables).items()
                    if k in got or v}
        assert got == {k: expected.get(k, 0) for k in got} and set(expected) <= set(got), panel_id
    _, series = panels.find("lmis-region", "region_series")
    data = panels.run(board_db, REGION, series, FROM, TO, variables)
    got = {datetime.fromtimestamp(r[0] / 1000, SEOUL).date().isoformat(): r[2]
           for r in data["rows"] if r[1] == "ui.initial_claim"}
    assert got == _cells(board_db, None, "ui.initial_claim", variables)
    if not variables:  # the national board's breakdown is the same table's national rows
        national = panels.run(board_db, NATIONAL, panels.find("lmis-national", "industries")[1], FROM, TO, {})
        regional = {r[0]: r[1] for r in panels.run(
            board_db, REGION, panels.find("lmis-region", "region_industries")[1], FROM, TO, {})["rows"]}
        assert {r[0]: r[1] for r in national["rows"]} == {k: v for k, v in regional.items() if k in
                                                          {r[0] for r in national["rows"]}}
        assert len(national["rows"]) >= 15


def test_grafana_json_loads_back_into_the_sdk_and_uses_the_clickhouse_plugin():
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    for board in BOARDS:
        doc = dashboard_json(board)
        assert doc["uid"] == board.uid and doc["timezone"] == "Asia/Seoul"
        again = json.loads(JSONEncoder(sort_keys=True).encode(load_back(doc)))
        assert again == doc
        for panel, spec in zip(doc["panels"], board.panels, strict=True):
            target = panel["targets"][0]
            assert target["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": DATASOURCE_UID}
            assert target["editorType"] == "sql" and target["rawSql"] == spec.sql.strip()
            assert target["format"] == (0 if spec.format == "time_series" else 1)
            assert int(re.search(r"(\d+)s", doc["refresh"]).group(1)) >= 5


def test_provisioning_folder(tmp_path):
    export_provisioning(tmp_path)
    ds = yaml.safe_load((tmp_path / "datasources" / "lmis.yaml").read_text())["datasources"][0]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["jsonData"]["readOnly"] is True
    assert ds["jsonData"]["username"] == "${CLICKHOUSE_READER_USER}"
    assert ds["secureJsonData"]["password"] == "${CLICKHOUSE_READER_PASSWORD}", "secrets come from the environment"
    provider = yaml.safe_load((tmp_path / "dashboards" / "lmis.yaml").read_text())["providers"][0]
    assert provider["folderUid"] == "lmis"
    files = sorted(p.name for p in (tmp_path / "dashboards" / "lmis").glob("*.json"))
    assert files == sorted(f"{b.uid}.json" for b in BOARDS)


class RecordedGrafana(BaseHTTPRequestHandler):
    """A recording of Grafana's documented HTTP API (folders, dashboards by UID) -- not Grafana.

    Responses follow the shapes in Grafana's API documentation (GET /api/folders/:uid → 404 then the
    folder; POST /api/folders; GET /api/dashboards/uid/:uid → 404 or {dashboard, meta};
    POST /api/dashboards/db → {id, uid, status, version}).
    """

    folders: dict = {}
    dashboards: dict = {}
    log: list = []

    def _send(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        type(self).log.append(("GET", self.path, self.headers.get("Authorization")))
        if m := re.fullmatch(r"/api/folders/([\w-]+)", self.path):
            f = self.folders.get(m.group(1))
            return self._send(200, f) if f else self._send(404, {"message": "folder not found", "status": "not-found"})
        if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", self.path):
            d = self.dashboards.get(m.group(1))
            return self._send(200, d) if d else self._send(404, {"message": "Dashboard not found"})
        self._send(404, {"message": "Not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).log.append(("POST", self.path, self.headers.get("Authorization")))
        if self.path == "/api/folders":
            folder = {"id": 7, "uid": body["uid"], "title": body["title"], "version": 1}
            self.folders[body["uid"]] = folder
            return self._send(200, folder)
        if self.path == "/api/dashboards/db":
            d = dict(body["dashboard"])
            old = self.dashboards.get(d["uid"])
            version = (old["dashboard"]["version"] + 1) if old else 1
            d.update(id=42, version=version)
            self.dashboards[d["uid"]] = {"dashboard": d, "meta": {"folderUid": body["folderUid"], "version": version}}
            return self._send(200, {"id": 42, "uid": d["uid"], "status": "success", "version": version,
                                    "url": f"/d/{d['uid']}"})
        self._send(404, {"message": "Not found"})


def test_push_twice_against_a_recorded_grafana_api_changes_nothing_the_second_time():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        first = push(url, "glsa_test_token")
        assert set(first.values()) == {"created"} and set(first) == {b.uid for b in BOARDS}
        assert ("POST", "/api/folders", "Bearer glsa_test_token") in RecordedGrafana.log
        posts_before = sum(1 for m, *_ in RecordedGrafana.log if m == "POST")
        second = push(url, "glsa_test_token")
        assert set(second.values()) == {"unchanged"}
        assert sum(1 for m, *_ in RecordedGrafana.log if m == "POST") == posts_before
    finally:
        server.shutdown()


def test_labels_in_korean_and_english():
    ko, en = labels("ko"), labels("en")
    assert ko["region"]["48"] == "경상남도" and en["region"]["48"] == "Gyeongnam"
    assert ko["occupation"]["11"] != ko["region"]["11"], "codes overlap between lists: labels are namespaced"
    assert ko["measure"]["ui.initial_claim"] != en["measure"]["ui.initial_claim"]


def test_the_committed_provisioning_folder_is_current(tmp_path):
    from pathlib import Path

    export_provisioning(tmp_path)
    committed = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "provisioning"
    for fresh in tmp_path.rglob("*.*"):
        kept = committed / fresh.relative_to(tmp_path)
        assert kept.exists() and kept.read_text() == fresh.read_text(), \
            f"{kept} is stale: run lmis dashboards export --out deploy/grafana/provisioning"


def test_the_api_token_when_enabled(board_db):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api

    api = TestClient(create_api(lambda: board_db, token="s3cret-token"))
    params = {"from": "2026-03-02", "to": "2026-03-03"}
    bearer = {"Authorization": "Bearer s3cret-token"}
    assert api.get("/api/indicators", params=params).status_code == 401
    assert api.get("/api/indicators", params=params, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = api.get("/api/indicators", params=params, headers=bearer)
    assert ok.status_code == 200 and len(ok.json()["rows"]) == 2
    # The API's documents and the board's code are behind it too.
    for path in ("/openapi.json", "/docs", "/static/board.js"):
        assert api.get(path).status_code == 401, path
    assert api.get("/openapi.json", headers=bearer).status_code == 200


def test_the_board_behind_a_token_asks_for_it_once_and_never_takes_it_from_the_url(board_db):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api

    api = TestClient(create_api(lambda: board_db, token="s3cret-token"))
    for url in ("/", "/?token=s3cret-token"):
        page = api.get(url)
        assert page.status_code == 200 and 'type="password"' in page.text and "board.js" not in page.text, url
    assert api.get("/api/boards", params={"token": "s3cret-token"}).status_code == 401
    assert api.post("/api/session", json={"token": "nope"}).status_code == 401
    opened = api.post("/api/session", json={"token": "s3cret-token"})
    assert opened.status_code == 204
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "s3cret-token" not in cookie
    # The session's cookie opens the board and its API.
    assert "board.js" in api.get("/").text
    assert api.get("/api/indicators", params={"from": "2026-03-02", "to": "2026-03-03"}).status_code == 200


def test_every_page_carries_a_strict_content_security_policy(board_db):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api

    api = TestClient(create_api(lambda: board_db))
    for path in ("/", "/static/board.js", "/api/boards", "/api/indicators?from=2026-03-02&to=x"):
        res = api.get(path)
        policy = dict(p.strip().split(" ", 1) for p in res.headers["content-security-policy"].split(";"))
        assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'", path
        assert res.headers["x-content-type-options"] == "nosniff"


def test_recommendations_answer_503_when_the_matcher_process_has_failed(board_db, tmp_path):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api
    from streams.matching_process import MatchingProcess

    failed = MatchingProcess(board_db, tmp_path / "m.pkl", Matcher(), {"bootstrap_servers": ["127.0.0.1:1"]})
    failed.failed = "the matcher process exited unexpectedly"  # what the status thread records when it dies
    api = TestClient(create_api(lambda: board_db, matching=failed))
    for path in (f"/api/recommendations/seeker/S{'0' * 16}", f"/api/recommendations/vacancy/V{'0' * 16}"):
        got = api.get(path)
        assert got.status_code == 503 and "exited unexpectedly" in got.json()["detail"], got.text
    assert api.get("/api/health", params={"store": "false"}).json()["status"] == "ok"


def test_health_reports_the_engines_and_the_processs_memory(board_db):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api
    from lmis.worker import process_memory_mb

    body = TestClient(create_api(lambda: board_db, health=lambda: {"memory_mb": process_memory_mb()})).get(
        "/api/health").json()
    # The board's fixture has just loaded and read a year of rollups: the engine holds some of it.
    assert body["engine_memory_mb"] > 0
    memory = body["memory_mb"]
    assert memory["anon"] > 0 and memory["file"] > 0 and memory["peak"] >= memory["rss"]
    assert abs(memory["rss"] - memory["anon"] - memory["file"]) < 50  # the shared memory between them is small


def _person_values(rows: list[dict]) -> list[tuple[str, object]]:
    from sinks.disclosure import PERSON_FIELDS

    # A 7-day average gives its week's total back.
    return [(k, v) for r in rows for k, v in r.items() if k in PERSON_FIELDS] + [
        (k, None if v is None else round(v * 7)) for r in rows for k, v in r.items()
        if k.endswith("_ma7") and k.removesuffix("_ma7") in PERSON_FIELDS]


def test_no_published_output_gives_a_count_of_one_or_two_persons(board_db, tmp_path):
    """The API (JSON and CSV), the revisions, the Grafana panels and `lmis indicators` publish no count of 1
    or 2 persons (nor a figure computed from one); only the API token with raw=true gets them, marked."""
    import csv
    import io

    import uvicorn
    from fastapi.testclient import TestClient

    from dashboards.api import create_api
    from sinks.disclosure import PERSON_MEASURES, is_small
    from tests.test_alertmanager import free_port

    api = TestClient(create_api(lambda: board_db, token="s3cret-token"))
    bearer = {"Authorization": "Bearer s3cret-token"}
    params = {"from": "2026-03-02", "to": "2026-03-08", "by": "day,region,industry"}
    published = api.get("/api/indicators", params=params, headers=bearer)
    assert published.headers["x-lmis-disclosure"] == "suppressed" and "suppressed" in published.json()["disclosure"]
    values = _person_values(published.json()["rows"])
    assert values and not [kv for kv in values if is_small(kv[1])]
    raw = api.get("/api/indicators", params={**params, "raw": "true"}, headers=bearer)
    assert raw.headers["x-lmis-disclosure"] == "unsuppressed" and raw.json()["disclosure"].startswith("UNSUPPRESSED")
    small = [kv for kv in _person_values(raw.json()["rows"]) if is_small(kv[1])]
    assert len(small) > 20, "the week by region and industry holds small cells: the test must see some"
    # Every suppressed figure is one the raw answer has as 1 or 2, or computed from one.
    for pub, exact in zip(published.json()["rows"], raw.json()["rows"], strict=True):
        for k, v in pub.items():
            assert v == exact[k] or v is None, (k, v, exact[k])
    # The ratio computed from a suppressed count would give it back: it is suppressed with it.
    for pub, exact in zip(published.json()["rows"], raw.json()["rows"], strict=True):
        if is_small(exact["ui_initial_claims"]) and exact["openings_posted"]:
            assert pub["claims_per_opening"] is None
    # The board's session (a browser) and a caller without the token get no raw counts.
    assert api.get("/api/indicators", params={**params, "raw": "true"}).status_code == 401
    assert TestClient(create_api(lambda: board_db)).get("/api/indicators",
                                                        params={**params, "raw": "true"}).status_code == 403
    as_csv = api.get("/api/indicators", params={**params, "format": "csv"}, headers=bearer)
    csv_rows = [{k: (float(v) if v else None) for k, v in r.items() if k not in ("day", "region", "industry")}
                for r in csv.DictReader(io.StringIO(as_csv.text))]
    assert csv_rows and not [kv for kv in _person_values(csv_rows) if is_small(kv[1])]
    revised = api.get("/api/revisions", params={"from": "2026-03-02", "to": "2026-03-29"}, headers=bearer).json()
    persons = [r for r in revised["rows"] if r["measure"] in PERSON_MEASURES]
    assert persons and not [r for r in persons if any(is_small(r[k]) for k in ("first", "final", "now"))]
    raw_revised = api.get("/api/revisions", params={"from": "2026-03-02", "to": "2026-03-29", "raw": "true"},
                          headers=bearer).json()["rows"]
    assert any(is_small(r["now"]) for r in raw_revised if r["measure"] in PERSON_MEASURES)
    # Grafana's panels (the same SQL as the board's): every board, the smallest region drilled into.
    for board in (NATIONAL, REGION):  # the labour market's (the pipeline's and the matcher's count no persons)
        for p in board.panels:
            data = panels.run(board_db, board, p, FROM, TO, {"region": ["50"]} if board is REGION else {})
            names = [c["name"] for c in data["columns"]]
            for row in data["rows"]:
                cells = dict(zip(names, row, strict=True))
                if cells.get("unit", "persons") != "persons":
                    continue  # the headline's ratios and openings: not persons
                for name, value in cells.items():
                    if name in PERSON_COLUMNS or name.removesuffix("_7d") in PERSON_COLUMNS:
                        assert not is_small(value), (board.uid, p.id, row)
    # `lmis indicators` (through the worker's API, as when the worker runs).
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(lambda: board_db, token="s3cret-token"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        env = {"LMIS_WEB_PORT": str(port), "LMIS_API_TOKEN": "s3cret-token", "LMIS_DATA_DIR": str(tmp_path)}
        args = ("indicators", "--from", "2026-03-02", "--to", "2026-03-08", "--by", "day,region,industry",
                "--format", "json")
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.1)
        out = run_lmis(*args, env=env, timeout=300)
        assert "suppressed" in out.stderr and not [kv for kv in _person_values(json.loads(out.stdout))
                                                   if is_small(kv[1])]
        out = run_lmis(*args, "--raw", env=env, timeout=300)
        assert "UNSUPPRESSED" in out.stderr and [kv for kv in _person_values(json.loads(out.stdout))
                                                 if is_small(kv[1])]
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_panel_unchanged_since_the_last_refresh_moves_no_data_and_answers_compressed(board_db):
    from fastapi.testclient import TestClient

    from dashboards.api import create_api

    api = TestClient(create_api(lambda: board_db))
    url = "/api/boards/lmis-national/panels/trend_ui"
    first = api.get(url, params={"from": "2026-03-02", "to": "2026-03-29"}, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["content-encoding"] == "gzip"
    etag = first.headers["etag"]
    again = api.get(url, params={"from": "2026-03-02", "to": "2026-03-29"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = api.get(url, params={"from": "2026-03-02", "to": "2026-03-28"}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag and other.json()["rows"]


def test_the_random_baselines_auc_over_the_range_is_about_a_half(board_db):
    """The quality panel pools the days' AUC by their pairs of a good outcome and a rejection: a random
    ranking scores ≈ 0.5 (it read 0.42 when days with one kind of outcome counted as 0)."""
    from dashboards.boards import BOARD_BY_UID

    board = BOARD_BY_UID["lmis-matching"]
    panel = next(p for p in board.panels if p.id == "quality")
    data = panels.run(board_db, board, panel, FROM, TO, {})
    names = [c["name"] for c in data["columns"]]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in data["rows"]}
    assert abs(rows["random"]["auc"] - 0.5) < 0.06, rows["random"]
    assert rows["model"]["auc"] > rows["random"]["auc"]


def test_insured_losses_by_region_and_by_industry_show_the_layoff(board_db):
    """The layoff (Gyeongnam manufacturing, from the month's 11th day) is where an official sees it: the
    region's insured losses on the national board, and manufacturing's in the region's drill-down."""
    layoff = (date(2026, 3, 12), date(2026, 3, 18))
    data = panels.run(board_db, NATIONAL, next(p for p in NATIONAL.panels if p.id == "insurance_by_region"),
                      *layoff, {})
    rows = {r[0]: r[1:] for r in data["rows"]}
    assert len(rows) == 17
    for region, (losses, acquisitions, net) in rows.items():
        exact = board_db.query(
            "SELECT sumIf(value, measure = 'insurance.loss'), sumIf(value, measure = 'insurance.acquisition') "
            "FROM measures_by_region WHERE region = {r:String} AND day BETWEEN {lo:Date} AND {hi:Date}",
            parameters={"r": region, "lo": layoff[0], "hi": layoff[1]}).result_rows[0]
        assert (losses, acquisitions) == tuple(None if 0 < v < SMALL_CELL else v for v in exact), region
        assert net == (None if None in (losses, acquisitions) else acquisitions - losses)
    before = panels.run(board_db, NATIONAL, next(p for p in NATIONAL.panels if p.id == "insurance_by_region"),
                        layoff[0] - timedelta(days=7), layoff[1] - timedelta(days=7), {})
    assert rows["48"][0] > 1.5 * {r[0]: r[1] for r in before["rows"]}["48"]
    drill = panels.run(board_db, REGION, next(p for p in REGION.panels if p.id == "region_insurance"),
                       *layoff, {"region": ["48"]})
    by_industry = {r[0]: r[1] or 0 for r in drill["rows"]}
    assert max(by_industry, key=by_industry.get) == "C"


def test_the_region_drill_down_has_the_headline_for_the_chosen_region(board_db):
    """All regions: the national headline exactly; Gyeongnam: its own totals, compared the same way."""
    national = panels.run(board_db, NATIONAL, NATIONAL.panels[0], FROM, TO, {})
    regional = panels.run(board_db, REGION, REGION.panels[0], FROM, TO, {})
    assert REGION.panels[0].id == "region_headline" and regional["rows"] == national["rows"]
    names = [c["name"] for c in regional["columns"]]
    rows = {r[0]: dict(zip(names, r, strict=True))
            for r in panels.run(board_db, REGION, REGION.panels[0], FROM, TO - timedelta(days=1),
                                {"region": ["48"]})["rows"]}

    def total(measure: str, day: date) -> int:
        return board_db.query("SELECT sum(value) FROM measures_by_region WHERE region = '48' AND measure = "
                              "{m:String} AND day = {d:Date}", parameters={"m": measure, "d": day}).result_rows[0][0]

    day = TO - timedelta(days=1)
    openings = total("openings.posted", day), total("openings.posted", day - timedelta(days=7))
    assert rows["openings.posted"]["value"] == openings[0]
    assert rows["openings.posted"]["change_7d"] == openings[0] - openings[1]
    flow = offers_to_seekers_ratio(openings[0], total("seeker.registered", day))
    assert rows["ratio.offers_to_seekers"]["value"] == (None if flow is None else round(flow, 3))
