"""Composition of ``lmis worker``: settings → ClickHouse (migrated) → pipeline → faust app with the API."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from alerts.delivery import Outbox
from alerts.jobs import AlertJobs
from alerts.judge import DAILY, HOURLY
from briefing.delivery import Mailer, Smtp
from briefing.jobs import BriefingConfig, BriefingJob, preview, recipients
from dashboards.api import create_api
from lmis import alertmanager
from lmis.procs import proc_status
from lmis.settings import Settings
from lmis.stack import port_free
from schemas.calendar import seoul_midnight
from sinks import insured
from sinks.clickhouse import connect, limit_reads, migrate
from sinks.published import FINAL, FIRST, publish_day
from sinks.rollups import Rollup
from sinks.schedule_log import ClickHouseRunLog
from streams import native
from streams.classifier import ClassifierPool
from streams.matching import Matcher
from streams.matching_process import MatchingProcess
from streams.membership import ensure_sole_worker, worker_identity
from streams.pipeline import TrendPipeline
from streams.processing import Policy
from streams.schedule import AfterEachDay, EventTimeJob, Every, Scheduler, from_ms
from streams.worker import PeriodicJob, WorkerConfig, build_app

log = logging.getLogger("lmis.worker")


def build(settings: Settings):
    # A client per role. A client serialises its own calls (the embedded engine's handle is not reentrant;
    # an HTTP session takes one query at a time), while the engine runs different clients' statements
    # concurrently: a rollup then no longer holds up the writes behind it, nor the board's reads (measured
    # on the embedded engine: a small query beside a 0.9 s one took 1.08 s on one client, 3 ms on two).
    client = connect(settings.clickhouse_url)  # the pipeline's writes and health rows
    migrate(client)
    if settings.insured_stock_file is not None:
        try:  # a bad file is said, and the rest runs: the flows do not need it
            rows = insured.read_snapshot(settings.insured_stock_file)
            insured.load_snapshot(client, rows)
            log.info("insured stock: %d rows as of %s from %s", len(rows),
                     ", ".join(sorted({r[0].isoformat() for r in rows})), settings.insured_stock_file)
        except (OSError, ValueError) as exc:
            log.error("the insured stock was not loaded: %s", exc)
    log.info("messages read by the %s", "compiled reader" if native.available() else "Python reader "
             "(the compiled one is not built, or LMIS_COMPILED_READER=false)")
    rollup_client = connect(settings.clickhouse_url)  # and more if its statements are to run at once
    api_client = limit_reads(connect(settings.clickhouse_url), settings.query_max_memory_mb, settings.query_max_seconds)
    policy = Policy(allowed_lateness=timedelta(hours=settings.allowed_lateness_hours),
                    future_tolerance=timedelta(minutes=settings.future_tolerance_minutes))
    matching = None
    jobs: tuple[PeriodicJob, ...] = ()
    if settings.matching_enabled:
        fresh = Matcher(candidates=settings.matching_candidates, exposure_share=settings.matching_exposure_share,
                        recommend_on_registration=settings.matching_recommend_on_registration)
        # In a process of its own, reading Kafka itself; the worker writes its observatory rows.
        matching = MatchingProcess(connect(settings.clickhouse_url), matching_checkpoint(settings), fresh,
                                   settings.kafka_client_options(),
                                   policy, settings.matching_checkpoint_seconds)
        try:
            matching.start()
        except Exception as exc:  # noqa: BLE001 -- recommendations are optional: the numbers go on
            matching.failed = f"did not start: {exc}"
            log.error("the matcher %s; it is tried again later", matching.failed)
        jobs = (PeriodicJob("matching", 5.0, matching.tick, matching.stop, on_pipeline_thread=False),)
    # The alerts the detectors stored, handed to Alertmanager (wall clock: delivery is about now).
    outbox = Outbox(connect(settings.clickhouse_url), alertmanager.url(settings),
                    resolve_after=timedelta(seconds=settings.alert_group_wait_seconds + 15),
                    board_url=f"http://{settings.web_host}:{settings.web_port}")
    jobs += (PeriodicJob("alerts.outbox", 5.0, outbox.tick, on_pipeline_thread=False),
             # the worker's own lag and freshness, on the wall clock
             PeriodicJob("alerts.pipeline", 60.0, AlertJobs(connect(settings.clickhouse_url)).pipeline,
                         on_pipeline_thread=False))
    # The daily briefing: rendered by an event-time job (below), sent on the wall clock.
    mailer = Mailer(connect(settings.clickhouse_url), smtp(settings),
                    alert_after=timedelta(minutes=settings.briefing_alert_after_minutes))
    jobs += (PeriodicJob("briefing.mailer", 5.0, mailer.tick, on_pipeline_thread=False),)
    classifier = ClassifierPool(settings.classify_processes) if settings.classify_processes else None
    pipeline = TrendPipeline(client, policy, max_rows=settings.sink_max_rows, max_seconds=settings.sink_max_seconds,
                             classifier=classifier,
                             rollup=Rollup(rollup_client, timedelta(hours=settings.duplicate_posting_window_hours),
                                           more_clients=[connect(settings.clickhouse_url) for _ in range(2)],
                                           backlog_lanes=settings.rollup_statements_at_once))
    identity = worker_identity(settings.consumer_group, settings.clickhouse_url)
    cfg = WorkerConfig(kafka_options=settings.kafka_client_options(), group_id=settings.consumer_group,
                       client_id=identity.client_id, group_instance_id=identity.group_instance_id,
                       web_host=settings.web_host, web_port=settings.web_port,
                       rollup_interval_s=settings.rollup_interval_seconds,
                       freshness_target_s=settings.freshness_target_seconds,
                       backlog_whole_rollup_s=settings.backlog_whole_rollup_seconds,
                       health_interval_s=settings.health_interval_seconds, max_poll_records=settings.sink_max_rows)
    token = settings.api_token.get_secret_value() if settings.api_token else None

    def health() -> dict:
        stats = pipeline.stats
        ingest = app.ingest
        reasons = list(ingest.problems.values())
        if matching is not None and matching.failed:
            reasons.append(f"matcher down: {matching.failed}")
        reasons += [p for p in (outbox.problem, mailer.problem) if p]
        return {"status": "degraded" if reasons else "ok", "reasons": reasons,
                "events": {t: s.events for t, s in stats.by_topic.items()},
                "dead_letters": dict(stats.dead_by_reason),
                "buffered_messages": pipeline.buffered_messages + ingest.classifying,
                "days_awaiting_rollup": pipeline.days_awaiting_rollup,
                "freshness_since_start": {"samples": stats.freshness_since_start.n,
                                          "p50_s": stats.freshness_since_start.quantile(0.5),
                                          "p99_s": stats.freshness_since_start.quantile(0.99)},
                "committed": {f"{t}/{p}": o for (t, p), o in sorted(ingest.committed.items())},
                # The message time read, stored and rolled up (visible on the boards) on every partition.
                "event_time": {k: None if ms is None else from_ms(ms).isoformat()
                               for k, ms in ingest.clock.items() if k != "buffered"},
                # Each event-time job's newest instant done this run, and a failure since (retried).
                "event_time_jobs": {job: dict(status) for job, status in ingest.jobs_status.items()},
                "matching": matching.summary() if matching else None,
                "memory_mb": process_memory_mb()}

    # The API reads through the worker's engine: only one process may open an embedded ClickHouse folder.
    briefings = briefing_config(settings, policy.allowed_lateness)
    api = create_api(lambda: api_client, token, health, matching, max_rows=settings.query_max_rows,
                     briefing=lambda c, day, lang: preview(c, day, lang, briefings))
    jobs_client = connect(settings.clickhouse_url)  # the event-time jobs' (a thread of their own)
    scheduler = Scheduler(publication_jobs(jobs_client, policy.allowed_lateness)
                          + alert_jobs(AlertJobs(jobs_client, policy.allowed_lateness,
                                                 history_from=settings.alert_history_from),
                                       settings.alert_history_from)
                          + (briefing_job(jobs_client, settings, policy.allowed_lateness),),
                          ClickHouseRunLog(jobs_client))
    app = build_app(cfg, pipeline, api, jobs, scheduler)
    return app, pipeline


def publication_jobs(client, allowed_lateness: timedelta) -> tuple[EventTimeJob, ...]:
    """Each day's figures as published (sinks.published): at the day's end, and final once the allowed
    lateness after it has passed -- no event accepted later can change them."""

    def job(stage: str, schedule: AfterEachDay) -> EventTimeJob:
        name = f"published.{stage}"

        def run(instant: datetime, clock: datetime) -> None:
            publish_day(client, schedule.day_of(instant), stage, instant, clock,
                        token=f"{name}:{int(instant.timestamp() * 1000)}")

        return EventTimeJob(name, schedule, run)

    return job(FIRST, AfterEachDay()), job(FINAL, AfterEachDay(allowed_lateness))


def alert_jobs(alerts: AlertJobs, go_live: date | None = None) -> tuple[EventTimeJob, ...]:
    """The detectors: data faults each hour, then (at a day's end, after that hour's) the day's labour-market
    signals, which data faults of the day inhibit. From the go-live on, when there is one (the hours before
    it hold only the loaded history of what was still open)."""
    begins = None if go_live is None else seoul_midnight(go_live)
    return (EventTimeJob(HOURLY, Every(timedelta(hours=1)), alerts.hourly, begins=begins),
            EventTimeJob(DAILY, AfterEachDay(), alerts.daily, follows=HOURLY, begins=begins))


def briefing_config(settings: Settings, lateness: timedelta = timedelta(hours=72)) -> BriefingConfig:
    return BriefingConfig(lang=settings.briefing_lang, recipients=recipients(settings.briefing_email_to),
                          sender=settings.smtp_from, hour=settings.briefing_hour, lateness=lateness,
                          start=settings.briefing_from)


def briefing_job(client, settings: Settings, lateness: timedelta) -> EventTimeJob:
    """The day's briefing at ``briefing_hour`` the next morning, after the day's alerts were judged."""
    cfg = briefing_config(settings, lateness)
    begins = None if cfg.start is None else seoul_midnight(cfg.start + timedelta(days=1))
    return EventTimeJob("briefing", AfterEachDay(timedelta(hours=cfg.hour)), BriefingJob(client, cfg).run,
                        follows=DAILY, begins=begins)


def smtp(settings: Settings) -> Smtp:
    return Smtp(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_username,
                settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                settings.smtp_starttls, settings.smtp_ssl)


def process_memory_mb() -> dict[str, float]:
    """The worker process's resident memory now (``rss``: ``anon`` plus ``file``, the mapped code -- the
    embedded engine's library alone is ~200 MB of it) and its peak, from /proc (Linux); {} elsewhere."""
    fields = proc_status()
    names = {"rss": "VmRSS", "anon": "RssAnon", "file": "RssFile", "peak": "VmHWM"}
    return {k: round(int(fields[v].split()[0]) / 1024, 1) for k, v in names.items() if v in fields}


def matching_checkpoint(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "matching" / "matcher.pkl"


class PortInUse(RuntimeError):
    pass


def own_port(host: str, port: int) -> None:
    """Fail before anything else if the API's port is taken (another worker?), rather than after joining the
    consumer group."""
    if not port_free(host, port):
        raise PortInUse(f"{host}:{port} is in use: another worker? Stop it, or set LMIS_WEB_PORT")


def run(settings: Settings, loglevel: str = "info") -> None:
    """The worker: its port, then its store, then -- alone in its consumer group -- Kafka."""
    from faust.worker import Worker
    from kafka.admin import KafkaAdminClient

    if not logging.getLogger().handlers:  # faust sets logging up later; until then, say what happens
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    own_port(settings.web_host, settings.web_port)
    app, _ = build(settings)
    ensure_sole_worker(
        lambda: KafkaAdminClient(**settings.kafka_client_options(), client_id="lmis-worker-check",
                                 request_timeout_ms=10_000),
        settings.consumer_group, worker_identity(settings.consumer_group, settings.clickhouse_url))
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
