"""The ``lmis`` command line. Nothing imports this module."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lmis.settings import get_settings, settings_table

app = typer.Typer(help="LMIS: real-time labour-market monitoring.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
stack_app = typer.Typer(help="The local Kafka broker (KRaft) and Alertmanager, on loopback.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event schemas.", no_args_is_help=True)
board_app = typer.Typer(help="The status boards: Grafana export and push, a read-only board server.",
                        no_args_is_help=True)
app.add_typer(board_app, name="dashboards")
bench_app = typer.Typer(help="Benchmarks: each prints its figures on its last line.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(stack_app, name="stack")
alerts_app = typer.Typer(help="Alerts: what fires, Grafana alert rules, Alertmanager's configuration.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(schemas_app, name="schemas")
console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# ---------------------------------------------------------------- stack
@stack_app.command("up")
def stack_up() -> None:
    """Start the local Kafka broker (wait until healthy, create the topics) and the local Alertmanager."""
    from lmis import stack

    try:
        _with_alertmanager(lambda: stack.up(get_settings(), log=console.print))
    except stack.StackError as exc:
        _fail(str(exc))


def _with_alertmanager(start_kafka) -> None:
    """Alertmanager first (quick, and the usual failure: not built), then Kafka; if Kafka fails, the
    Alertmanager started here is stopped again, so that nothing is left half up."""
    from lmis import alertmanager

    s = get_settings()
    was_running = alertmanager.running_pid(s) is not None
    alertmanager.up(s, log=console.print)
    try:
        start_kafka()
    except BaseException:
        if not was_running:
            alertmanager.down(s, log=lambda *_: None)
        raise


@stack_app.command("down")
def stack_down() -> None:
    """Stop the worker, the local Kafka broker and the local Alertmanager cleanly."""
    import os
    import signal

    from lmis import stack

    s = get_settings()
    pid_file = s.data_dir / "worker.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if stack.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            import time

            deadline = time.monotonic() + 60
            while stack.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            console.print(f"worker (pid {pid}) stopped")
        pid_file.unlink()
    if not stack.down(s, log=console.print):
        console.print("Kafka was not running")
    from lmis import alertmanager

    alertmanager.down(s, log=console.print)


@stack_app.command("topics")
def stack_topics() -> None:
    """Create the LMIS topics on LMIS_KAFKA_BOOTSTRAP if missing (any cluster, e.g. production)."""
    from lmis import stack

    for topic, partitions in stack.ensure_topics(get_settings()).items():
        console.print(f"{topic}: {partitions} partitions")


@stack_app.command("status")
def stack_status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Is the broker running; topics, partitions and message counts."""
    from lmis import stack

    info = stack.status(get_settings())
    if as_json:
        print(json.dumps(info, indent=2))
        return
    console.print(f"Kafka at {info['bootstrap']}: " + (f"running (pid {info['pid']})" if info["running"]
                                                       else "not running"))
    for topic, t in info.get("topics", {}).items():
        console.print(f"  {topic:<20} partitions={t['partitions']} messages={t['messages']}")
    if "error" in info:
        console.print(f"[red]{info['error']}[/]")
    if not info["running"]:
        raise typer.Exit(3)


# ---------------------------------------------------------------- schemas
@schemas_app.command("export")
def schemas_export(check: bool = typer.Option(False, help="Only check that the files are up to date.")) -> None:
    """Write JSON Schema for every event type under schemas/jsonschema/."""
    from schemas.export import SCHEMA_DIR, export, stale_files

    if check:
        stale = stale_files()
        if stale:
            _fail(f"stale JSON Schema files: {', '.join(stale)}; run `lmis schemas export`")
        console.print("JSON Schema files are up to date")
        return
    for path in export():
        console.print(f"wrote {path.relative_to(SCHEMA_DIR.parent.parent)}")


@schemas_app.command("validate")
def schemas_validate(file: Path = typer.Argument(..., help="A JSON-lines file from `lmis simulate --out`.")) -> None:
    """Validate every message of a simulated file; print the errors by reason."""
    from collections import Counter

    from schemas.codec import EventError, decode_event
    from simulator.output import read_jsonl

    reasons: Counter[str] = Counter()
    good = 0
    for m in read_jsonl(file):
        try:
            decode_event(m.value)
            good += 1
        except EventError as exc:
            reasons[exc.reason] += 1
    console.print(f"valid={good} invalid={sum(reasons.values())} {dict(reasons)}")


# ---------------------------------------------------------------- simulator
def _parse_speed(speed: str) -> float | None:
    if speed == "max":
        return None
    try:
        value = float(speed)
    except ValueError:
        raise typer.BadParameter("--speed takes a number (× wall time) or 'max'") from None
    if value <= 0:
        raise typer.BadParameter("--speed must be positive")
    return value


@app.command()
def simulate(
    seed: int = typer.Option(1, help="Random seed: the same seed gives the same bytes."),
    start: str = typer.Option(..., help="First day, YYYY-MM-DD (Asia/Seoul)."),
    days: int = typer.Option(7, min=1, help="Number of days."),
    scale: float = typer.Option(0.01, help="1 = Korea's national flows; 0.01 = one hundredth."),
    scenario: list[str] = typer.Option([], help="Scenario to inject (repeatable), or 'all'; knobs after a colon: "
                                       "regional_layoff:region=11,industry=C,day=18,workers=800 (days from the start; "
                                       "knobs of each: docs/operations.md)."),
    speed: str = typer.Option("max", help="Event time replayed at N × wall time, or 'max'."),
    out: Path | None = typer.Option(None, help="Write JSON lines here."),
    kafka: bool = typer.Option(False, "--kafka", help="Produce to Kafka (LMIS_KAFKA_BOOTSTRAP)."),
    truth: Path | None = typer.Option(None, help="Write the exact expected counts here."),
    insured_stock: Path | None = typer.Option(None, help="Write the EI database's insured stock at the start "
                                              "here (CSV by region and industry; the worker loads "
                                              "LMIS_INSURED_STOCK_FILE)."),
    count_only: bool = typer.Option(False, help="Print daily totals only (fast, national scale)."),
) -> None:
    """Generate a calibrated stream of labour-market events with injected scenarios."""
    from simulator.calibration import insured_snapshot
    from simulator.engine import SimConfig, Simulator
    from simulator.output import paced, send_kafka, write_jsonl
    from sinks.insured import write_snapshot

    try:
        from simulator.scenarios import parse

        names, plan = parse(scenario)
        cfg = SimConfig(seed=seed, start=date.fromisoformat(start), days=days, scale=scale, scenarios=names, plan=plan)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    sim = Simulator(cfg)
    if insured_stock is not None:
        write_snapshot(insured_stock, insured_snapshot(cfg.start, scale))
    if count_only:
        totals = sim.count_only()
        report = {k: int(v.sum()) for k, v in sorted(totals.items()) if not k.startswith("stock.")}
        report["stock.open_openings.mean"] = int(totals["stock.open_openings"].mean())
        print(json.dumps(report, indent=2))
        return
    if (out is None) == (not kafka):
        raise typer.BadParameter("give exactly one of --out FILE or --kafka")
    pace = _parse_speed(speed)
    first_ms = sim.t0_ms + sim.W * 86_400_000
    total_ms = days * 86_400_000
    with Progress(TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
                  TextColumn("{task.fields[sent]} messages"), TimeElapsedColumn(), console=console,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task("sim", total=days, sent=0)
        count = [0]

        def tick(m) -> None:
            count[0] += 1
            if count[0] % 2000 == 0:
                done = min(days, max(0, (m.emit_ms - first_ms) * days // total_ms))
                progress.update(task, completed=done, sent=count[0])

        stream = paced(sim.messages(), pace)
        if out is not None:
            n = write_jsonl(stream, out, tick)
        else:
            n = send_kafka(stream, get_settings().kafka_client_options(), tick)
        progress.update(task, completed=days, sent=n)
    if truth is not None:
        sim.truth.write(truth)
    console.print(f"{n} messages → {out or get_settings().kafka_bootstrap}"
                  + (f"; truth in {truth}" if truth else ""))


# ---------------------------------------------------------------- ClickHouse
@app.command()
def migrate() -> None:
    """Apply the ClickHouse migrations (idempotent)."""
    from sinks.clickhouse import ClickHouseLocked, connect
    from sinks.clickhouse import migrate as run

    try:
        client = connect(get_settings().clickhouse_url)
    except ClickHouseLocked as exc:
        _fail(str(exc))
    applied = run(client)
    console.print(f"applied migrations {applied}" if applied else "ClickHouse schema is up to date")


# The demo's scenarios, in its last two weeks (the four before are the baselines' history).
DEMO_SCENARIOS = ["regional_layoff:region=48,industry=C,day=29,workers=1500", "national_shock:day=31,days=11",
                  "source_outage:source=saramin,day=33,hour=9,hours=36", "duplicate_burst:source=jobkorea,day=37",
                  "malformed", "late"]


@app.command()
def demo(
    days: int = typer.Option(42, min=40, help="Simulated days (the scenarios fall in the last two weeks)."),
    scale: float = typer.Option(0.1, help="Share of Korea's national flows (0.1: most regions' daily "
                                "counts above the small-cell limit; the national shock well above the noise)."),
    start: str = typer.Option("2026-03-02", help="First simulated day."),
) -> None:
    """The main job on the embedded default: Kafka and Alertmanager up, six simulated weeks with every
    scenario (a layoff, a national shock, a portal outage, a re-sent day) through the worker into
    ClickHouse, the alerts they raise, the daily briefings, and where to see it all."""
    import time

    import httpx

    from lmis import alertmanager, procs, stack

    s = get_settings()
    try:
        _with_alertmanager(lambda: stack.running_pid(s) is None and stack.up(s, log=console.print))
    except stack.StackError as exc:
        _fail(str(exc))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    truth = s.data_dir / "demo-truth.json"
    before = sum(procs.end_and_committed(s)[0].values())
    # The EI database's insured stock at the go-live, which the worker carries forward with the flows.
    from simulator.calibration import insured_snapshot
    from sinks.insured import write_snapshot

    insured_file = s.data_dir / "demo-insured-stock.csv"
    write_snapshot(insured_file, insured_snapshot(date.fromisoformat(start), scale))
    # The simulated go-live: before it the stream holds only the history of what was still open then.
    worker_proc = procs.WorkerProcess({"LMIS_ALERT_HISTORY_FROM": start, "LMIS_BRIEFING_FROM": start,
                                       "LMIS_INSURED_STOCK_FILE": str(insured_file)},
                                      s.data_dir / "worker.log", loglevel="info")
    pid_file = s.data_dir / "worker.pid"
    if not (pid_file.exists() and stack.pid_alive(int(pid_file.read_text()))):
        worker_proc.start()
        pid_file.write_text(str(worker_proc.proc.pid))
        console.print(f"worker started (pid {worker_proc.proc.pid}, log {worker_proc.log})")
        worker_proc.wait_ready()
    else:
        worker_proc.proc = None
        console.print(f"worker already running (pid {pid_file.read_text()})")
    # The worker reads while the simulator writes (two cores: the stream and its processing side by side).
    simulate(seed=1, start=start, days=days, scale=scale, scenario=DEMO_SCENARIOS, speed="max", out=None,
             kafka=True, truth=truth, insured_stock=None, count_only=False)
    ends = sum(procs.end_and_committed(s)[0].values())
    with console.status(f"the worker is processing {ends - before} new messages ..."):
        if worker_proc.proc is not None:
            procs.wait_drained(s, worker_proc, ends)
    base = f"http://{s.web_host}:{s.web_port}"
    last_day = (date.fromisoformat(start) + timedelta(days=days - 1)).isoformat()
    # What the visible clock reaches (an hour before the newest message, so not the last day's end): the
    # end of the day before the last (15:00 UTC), and its eve's briefing, due at 08:00 KST (23:00 UTC).
    last_judged = f"{date.fromisoformat(last_day) - timedelta(days=1)}T15:00"
    last_briefing = f"{date.fromisoformat(last_day) - timedelta(days=2)}T23:00"
    with console.status("the detectors and the briefing are going through each hour and morning of the weeks ..."):
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                jobs = httpx.get(f"{base}/api/health", params={"store": "false"}, timeout=10).json()
                done = {k: v.get("done") or "" for k, v in jobs.get("event_time_jobs", {}).items()}
                if done.get("alerts.daily", "") >= last_judged and done.get("briefing", "") >= last_briefing:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
    try:
        alerts = httpx.get(f"{base}/api/alerts", timeout=10).json()["alerts"]
    except httpx.HTTPError:
        alerts = []
    console.print(f"\n[bold]Alerts[/] ({len(alerts)}; delivered through Alertmanager at {alertmanager.url(s)})")
    for a in sorted(alerts, key=lambda a: a["starts_at"])[:20]:  # the story in the order it happened
        console.print(f"  {a['state']:<9} {a['starts_at'][:16]} {a['summary_en']}")
    try:
        briefings = httpx.get(f"{base}/api/briefings", timeout=10).json()["briefings"]
    except httpx.HTTPError:
        briefings = []
    sent = "sent by SMTP" if s.briefing_email_to else "kept, not sent (set LMIS_BRIEFING_EMAIL_TO and LMIS_SMTP_*)"
    console.print(f"\n[bold]Daily briefings[/] ({len(briefings)}; {sent})")
    for b in briefings[:3]:
        console.print(f"  {b['subject']}   {base}/api/briefings/{b['day']}")
    console.print(f"\n[bold]Simulated period[/] {start} – {last_day} ({days} days at scale {scale:g}; the layoff, "
                  "the national shock, the portal outage and the re-sent day in its last two weeks)")
    console.print(f"  Kafka {s.kafka_bootstrap}   worker and board {base}   Alertmanager {alertmanager.url(s)}")
    console.print("\n[bold]Where to look[/]")
    console.print(f"  Alerts page: {base}/?page=alerts   API: {base}/api/alerts   Alertmanager: {alertmanager.url(s)}")
    console.print(f"  Briefings page: {base}/?page=briefings   one as text: lmis briefing --date "
                  f"{briefings[0]['day'] if briefings else last_day} [--lang en] [--out briefing.html]")
    console.print(f"  Expected counts and the injected anomalies (the simulator's truth): {truth}")
    console.print(f"  Indicators: lmis indicators --from {start} --to {start} --by day,region")
    console.print("  Stop everything: lmis stack down")
    print(f"Board: {base}/?board=lmis-national")


@app.command()
def worker(loglevel: str = typer.Option("info", help="crit, error, warn, info or debug.")) -> None:
    """Run the stream processors: Kafka → validation → ClickHouse, with the HTTP API, and (unless
    LMIS_MATCHING_ENABLED=false) the job matcher in a process of its own that reads Kafka at its own pace."""
    from lmis.worker import PortInUse, run
    from sinks.clickhouse import ClickHouseLocked, StoreUnavailable
    from streams.membership import AnotherWorker

    try:
        run(get_settings(), loglevel)
    except (PortInUse, ClickHouseLocked, StoreUnavailable, AnotherWorker) as exc:
        _fail(str(exc))


@app.command()
def indicators(
    from_: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (Asia/Seoul)."),
    to: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD."),
    by: str = typer.Option("day", help="day, then any of region, industry, occupation, age_band, sex, size_band."),
    format: str = typer.Option("csv", "--format", help="csv or json."),
    raw: bool = typer.Option(False, "--raw", help="Exact small counts of persons, for authorised internal use "
                             "(through the worker: needs LMIS_API_TOKEN)."),
) -> None:
    """Exact counts and indicators as published (counts of 1 or 2 persons suppressed, empty in CSV, null in
    JSON); asks the running worker, else reads ClickHouse itself."""
    import httpx

    from dashboards.api import parse_by, rows_to_csv
    from sinks.disclosure import SUPPRESSED, UNSUPPRESSED, suppress_indicator_rows

    if format not in ("csv", "json"):
        raise typer.BadParameter("--format must be csv or json")
    from sinks.readers import RequestError, check_range

    try:
        lo, hi = date.fromisoformat(from_), date.fromisoformat(to)
        dims = parse_by(by)
        check_range(lo, hi)  # as the API does
    except ValueError as exc:  # RequestError is one
        raise typer.BadParameter(str(exc)) from None
    s = get_settings()
    headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"} if s.api_token else {}
    url = f"http://{s.web_host}:{s.web_port}/api/indicators"
    try:
        res = httpx.get(url, params={"from": from_, "to": to, "by": by, "format": format, "raw": str(raw).lower()},
                        headers=headers, timeout=120)
    except httpx.TransportError:
        res = None
    if res is not None:
        if res.status_code != 200:
            _fail(f"the worker's API answered {res.status_code}: {res.text}")
        console.print(res.json()["disclosure"] if format == "json" else (
            UNSUPPRESSED if res.headers.get("x-lmis-disclosure") == "unsuppressed" else SUPPRESSED))
        sys.stdout.write(res.text if format == "csv" else json.dumps(res.json()["rows"], ensure_ascii=False, indent=1))
        return
    from sinks.clickhouse import ClickHouseLocked, connect, limit_reads
    from sinks.readers import indicator_table

    try:
        client = limit_reads(connect(s.clickhouse_url), s.query_max_memory_mb, s.query_max_seconds)
    except ClickHouseLocked as exc:
        _fail(f"{exc}; but the worker's API at {url} does not answer")
    try:
        rows = indicator_table(client, lo, hi, dims, max_rows=s.query_max_rows)
    except RequestError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 -- said plainly, not as a traceback
        if "UNKNOWN_TABLE" in str(exc):
            _fail(f"the store at {s.clickhouse_url} holds no LMIS data yet (`lmis worker` creates its tables)")
        _fail(f"reading {s.clickhouse_url} failed: {str(exc).strip()[:500]}")
    console.print(UNSUPPRESSED if raw else SUPPRESSED)
    rows = rows if raw else suppress_indicator_rows(rows)
    sys.stdout.write(rows_to_csv(rows) if format == "csv" else json.dumps(rows, ensure_ascii=False, indent=1))


@app.command()
def recommend(
    kind: str = typer.Argument(..., help="seeker (vacancies for a job seeker) or vacancy (seekers for a vacancy)."),
    id: str = typer.Argument(..., help="The pseudonymous id, e.g. S0123456789abcdef."),
    k: int = typer.Option(10, min=1, max=100, help="How many."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Top-k recommendations with scores and reasons; asks the running worker, else its last checkpoint."""
    import httpx

    if kind not in ("seeker", "vacancy"):
        raise typer.BadParameter("KIND must be seeker or vacancy")
    s = get_settings()
    headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"} if s.api_token else {}
    url = f"http://{s.web_host}:{s.web_port}/api/recommendations/{kind}/{id}"
    try:
        res = httpx.get(url, params={"k": k}, headers=headers, timeout=30)
    except httpx.TransportError:
        res = None
    if res is not None:
        if res.status_code != 200:
            _fail(f"the worker's API answered {res.status_code}: {res.text}")
        items = res.json()["vacancies" if kind == "seeker" else "seekers"]
        source = "the running worker"
    else:
        import pickle

        from dashboards.api import recommendation_items
        from lmis.worker import matching_checkpoint

        path = matching_checkpoint(s)
        if not path.exists():
            _fail(f"the worker's API at {url} does not answer and there is no matching checkpoint at {path}")
        with open(path, "rb") as f:
            matcher = pickle.load(f)
        try:
            found = (matcher.recommend_vacancies(id, k, record=False) if kind == "seeker"
                     else matcher.recommend_seekers(id, k))
        except KeyError:
            _fail(f"no active {'job seeker' if kind == 'seeker' else 'open vacancy'} {id} in {path}", 2)
        items = recommendation_items(found)
        source = f"the checkpoint {path}"
    if format == "json":
        print(json.dumps(items, ensure_ascii=False, indent=1))
        return
    from rich.table import Table

    table = Table(title=f"{'Vacancies for' if kind == 'seeker' else 'Job seekers for'} {id} (from {source})")
    for col in ("rank", "id", "score", "top reasons (weight × standardised value)"):
        table.add_column(col)
    for item in items:
        reasons = ", ".join(f"{name} {value:+.3f}" for name, value in item["reasons"].items())
        table.add_row(str(item["rank"]), item["id"], f"{item['score']:.4f}", reasons)
    console.print(table)


@board_app.command("export")
def dashboards_export(out: Path = typer.Option(..., help="Folder for the Grafana provisioning files.")) -> None:
    """Write a Grafana provisioning folder: data source, dashboard provider, dashboard JSON."""
    from dashboards.grafana import export_provisioning

    for path in export_provisioning(out):
        console.print(f"wrote {path}")


@board_app.command("push")
def dashboards_push(
    url: str = typer.Option(..., help="Grafana's URL, e.g. https://grafana.example.go.kr"),
    token: str = typer.Option(..., envvar="GRAFANA_TOKEN", help="A service-account token (or GRAFANA_TOKEN)."),
    folder: str = typer.Option("LMIS", help="Folder title (its UID is stable: lmis)."),
) -> None:
    """Create or update the folder and dashboards through Grafana's HTTP API (idempotent)."""
    from dashboards.grafana import push

    for uid, outcome in push(url, token, folder).items():
        console.print(f"{uid}: {outcome}")


@app.command()
def briefing(
    day: str = typer.Option(..., "--date", help="The day briefed, YYYY-MM-DD (Asia/Seoul)."),
    lang: str = typer.Option("", "--lang", help="ko or en (default: LMIS_BRIEFING_LANG)."),
    out: Path | None = typer.Option(None, "--out", help="Write the briefing's page (HTML) to this file."),
    send: bool = typer.Option(False, "--send", help="Send it now to LMIS_BRIEFING_EMAIL_TO through LMIS_SMTP_*."),
) -> None:
    """A day's briefing rendered from the current numbers: printed as text, written as a page, or sent (an ad-hoc
    send; the worker's own 08:00 briefing is sent once whatever this does). Asks the running worker, else reads
    ClickHouse itself. The briefings kept and sent: the board's briefings page and /api/briefings."""
    import email
    from email.policy import default as default_policy

    import httpx

    from briefing.delivery import Smtp
    from briefing.jobs import preview
    from lmis.worker import briefing_config, smtp

    s = get_settings()
    try:
        the_day = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--date must be YYYY-MM-DD, not {day!r}") from None
    lang = lang or s.briefing_lang
    if lang not in ("ko", "en"):
        raise typer.BadParameter("--lang must be ko or en")
    headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"} if s.api_token else {}
    url = f"http://{s.web_host}:{s.web_port}/api/briefings/{the_day}/preview"
    try:
        res = httpx.get(url, params={"lang": lang, "format": "eml"}, headers=headers, timeout=300)
        if res.status_code == 404:
            _fail(f"no data for {the_day}")
        if res.status_code != 200:
            _fail(f"the worker's API answered {res.status_code}: {res.text}")
        raw = res.text
        page = httpx.get(url, params={"lang": lang}, headers=headers, timeout=300).text if out else ""
    except httpx.TransportError:
        from sinks.clickhouse import ClickHouseLocked, StoreUnavailable, connect

        try:
            row = preview(connect(s.clickhouse_url), the_day, lang, briefing_config(s))
        except (ClickHouseLocked, StoreUnavailable) as exc:
            _fail(f"{exc}; but the worker's API at {url} does not answer")
        if row is None:
            _fail(f"no data for {the_day}")
        raw, page = row["message"], row["page"]
    msg = email.message_from_string(raw, policy=default_policy)
    if out:
        out.write_text(page, encoding="utf-8")
        console.print(f"wrote {out}")
    if send:
        to = [a.strip() for a in (s.briefing_email_to or "").split(",") if a.strip()]
        if not to or not s.smtp_host:
            _fail("set LMIS_BRIEFING_EMAIL_TO and LMIS_SMTP_HOST to send")
        del msg["To"]
        msg["To"] = ", ".join(to)
        server: Smtp = smtp(s)
        server.send(msg.as_string(), to)
        console.print(f"sent the briefing of {the_day} to {', '.join(to)}")
    if not out and not send:
        sys.stdout.write(msg.get_body(("plain",)).get_content())


@alerts_app.command("list")
def alerts_list(
    state: str = typer.Option("firing", help="firing, resolved or all."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The alerts, newest first: asks the running worker, else reads ClickHouse itself."""
    import httpx

    from sinks import alert_log
    from sinks.clickhouse import ClickHouseLocked, StoreUnavailable, connect

    if state not in ("firing", "resolved", "all"):
        raise typer.BadParameter("state must be firing, resolved or all")
    s = get_settings()
    headers = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"} if s.api_token else {}
    url = f"http://{s.web_host}:{s.web_port}/api/alerts"
    try:
        res = httpx.get(url, params={"state": state}, headers=headers, timeout=60)
        if res.status_code != 200:
            _fail(f"the worker's API answered {res.status_code}: {res.text}")
        alerts = res.json()["alerts"]
    except httpx.TransportError:
        try:
            rows = alert_log.history(connect(s.clickhouse_url), state=None if state == "all" else state)
        except ClickHouseLocked as exc:
            _fail(f"{exc}; but the worker's API at {url} does not answer")
        except StoreUnavailable as exc:
            _fail(str(exc))
        except Exception as exc:  # noqa: BLE001 -- said plainly
            if "UNKNOWN_TABLE" in str(exc):
                _fail(f"the store at {s.clickhouse_url} holds no alerts yet (`lmis worker` creates its tables)")
            raise
        alerts = [alert_log.as_json(r) for r in rows]
    if as_json:
        print(json.dumps(alerts, ensure_ascii=False, indent=2))
        return
    for a in alerts:
        console.print(f"{a['state']:<9} {a['severity']:<8} {a['starts_at'][:16]} {a['summary_ko']}")
    console.print(f"{len(alerts)} alerts")


@alerts_app.command("config")
def alerts_config() -> None:
    """Alertmanager's configuration generated from the LMIS_* settings (for the site's own Alertmanager)."""
    import yaml

    from lmis import alertmanager

    print(yaml.safe_dump(alertmanager.config(get_settings()), sort_keys=False, allow_unicode=True))


@alerts_app.command("export")
def alerts_export(out: Path = typer.Option(Path("deploy/grafana/provisioning"),
                                           help="The Grafana provisioning folder.")) -> None:
    """Write the labour-market spike rules as Grafana alert-rule provisioning (<out>/alerting/lmis.yaml)."""
    from alerts.grafana_rules import export

    console.print(f"wrote {export(out)}")


@alerts_app.command("push")
def alerts_push(
    url: str = typer.Option(..., help="Grafana's URL, e.g. https://grafana.example.go.kr"),
    token: str = typer.Option(..., envvar="GRAFANA_TOKEN", help="A service-account token (or GRAFANA_TOKEN)."),
) -> None:
    """Create or update the Grafana alert rules through its alerting provisioning API (idempotent)."""
    from alerts.grafana_rules import push

    for uid, outcome in push(url, token).items():
        console.print(f"{uid}: {outcome}")


@board_app.command("serve")
def dashboards_serve() -> None:
    """Serve the board and the read-only API from ClickHouse without ingesting (e.g. a ClickHouse server,
    or an embedded store no worker has open)."""
    import uvicorn

    from dashboards.api import create_api
    from sinks.clickhouse import ClickHouseLocked, connect

    s = get_settings()
    try:
        client = connect(s.clickhouse_url)
    except ClickHouseLocked as exc:
        _fail(f"{exc}; the worker already serves the board at http://{s.web_host}:{s.web_port}/")
    token = s.api_token.get_secret_value() if s.api_token else None
    console.print(f"board at http://{s.web_host}:{s.web_port}/")
    uvicorn.run(create_api(lambda: client, token), host=s.web_host, port=s.web_port, log_level="warning")


@bench_app.command("pipeline")
def bench_pipeline(
    scale: float = typer.Option(0.5, help="Share of national flows for the backlog."),
    days: int = typer.Option(3, help="Simulated days in the backlog."),
    live_seconds: int = typer.Option(180, help="Seconds at the national live rate (freshness; ~480 events)."),
    profile: bool = typer.Option(False, help="Also print where the time goes (in-process, cProfile)."),
) -> None:
    """Simulator → Kafka → worker → ClickHouse: throughput, freshness, memory, exactness."""
    from lmis.bench import profile_pipeline, run_pipeline_bench

    if profile:
        console.print(profile_pipeline())
    result = run_pipeline_bench(get_settings(), scale=scale, days=days, live_seconds=live_seconds,
                                log=console.print)
    console.print(f"{result.messages} messages drained in {result.seconds:.1f}s; "
                  f"{result.live_events} live-rate messages")
    print(result.line())


@bench_app.command("recovery")
def bench_recovery(
    scale: float = typer.Option(0.5, help="Share of national flows for the backlog."),
    days: int = typer.Option(3, help="Simulated days in the backlog."),
    kill_after: float = typer.Option(3.0, help="Seconds of draining before the SIGKILL."),
) -> None:
    """A worker killed mid-backlog and started again: until its API answers, until it has caught up; exact."""
    from lmis.bench_recovery import run_recovery_bench

    result = run_recovery_bench(get_settings(), scale=scale, days=days, kill_after_s=kill_after, log=console.print)
    console.print(f"{result.messages} messages, {result.committed_at_kill} committed at the kill")
    print(result.line())


@bench_app.command("alerts")
def bench_alerts(
    seeds: int = typer.Option(3, min=1, help="Quarters with every scenario at random knobs."),
    scale: float = typer.Option(0.05, help="Share of national flows."),
) -> None:
    """Recall, precision and delay of the alerts over simulated quarters, and false alarms in a normal one."""
    from lmis.bench_alerts import run_alerts_bench

    s = get_settings()
    result = run_alerts_bench(s.data_dir / "bench-alerts", seeds=seeds, scale=scale, log=console.print)
    for line in result.missed:
        console.print(f"[red]missed[/] {line}")
    for line in result.unmatched:
        console.print(f"[yellow]not an injected anomaly[/] {line}")
    console.print(f"one detection cycle (p50): hourly {result.hourly_p50_s:.2f} s, daily {result.daily_p50_s:.2f} s")
    print(result.line())


@bench_app.command("briefing")
def bench_briefing(repeats: int = typer.Option(5, help="Renders timed (the median is printed).")) -> None:
    """The daily briefing of a day of a national year (scale 1) read and rendered: time, size, images."""
    from lmis.bench_briefing import run_briefing_bench

    result = run_briefing_bench(get_settings(), repeats=repeats, log=console.print)
    console.print(f"reading its numbers {result.read_ms:.0f} ms (median); {result.rows} measure rows for the year")
    print(result.line())


@bench_app.command("board")
def bench_board(repeats: int = typer.Option(20, help="Queries per panel.")) -> None:
    """Every board panel's query over a national year on the embedded ClickHouse: p95 and max latency."""
    from lmis.bench import run_board_bench

    result = run_board_bench(get_settings(), repeats=repeats, log=console.print)
    for name, p95 in sorted(result.per_panel.items(), key=lambda kv: -kv[1]):
        console.print(f"  {name:<40} p95 {p95:7.1f} ms")
    console.print(f"{result.rows} measure rows for the year")
    print(result.line())


@bench_app.command("matching")
def bench_matching(
    scale: list[float] = typer.Option([0.03], help="Scale of the simulated month the model learns from "
                                      "(repeat for a grid: --scale 0.03 --scale 0.5)."),
    seed: list[int] = typer.Option([11], help="Simulator seed (repeat for a grid)."),
    open_vacancies: int = typer.Option(130_000, help="Open vacancies to recommend from (the seed's number)."),
    requests: int = typer.Option(2000, help="Recommendation requests timed."),
) -> None:
    """Precision@10 and AUC after a simulated month (the model vs the rule-based and random rankers), then
    recommendation latency over a national stock of open vacancies. With several scales or seeds, the
    rankers over each month, and the latency over the first."""
    from lmis.bench import run_matching_bench, run_matching_grid

    result = run_matching_bench(scale=scale[0], open_vacancies=open_vacancies, requests=requests, seed=seed[0],
                                log=console.print)
    # The first month is the one just learned; the others one at a time.
    months = [(sc, sd) for sc in scale for sd in seed][1:]
    grid = [result.quality, *run_matching_grid(months, log=console.print)] if months else []
    if grid:
        def beats(a: str, b: str) -> str:
            return f"{sum(q.precision_at_10[a] > q.precision_at_10[b] for q in grid)}/{len(grid)}"

        print(f"months={len(grid)} rule_beats_random={beats('rule', 'random')} "
              f"model_beats_rule={beats('model', 'rule')}")
    print(result.line())


@app.command("settings")
def show_settings(
    markdown: bool = typer.Option(False, help="The table of LMIS_* variables (docs/operations.md)."),
) -> None:
    """Show the effective settings (secrets hidden)."""
    if markdown:
        print(settings_table())
        return
    s = get_settings()
    for name, value in s.model_dump().items():
        print(f"LMIS_{name.upper()}={'***' if 'password' in name and value else value}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
