"""All settings in one place, each with its environment variable and its meaning (``LMIS_*``)."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LMIS_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for local state: Kafka's log and the embedded ClickHouse.")
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers (host:port, comma separated).")
    kafka_controller_port: int = Field(19093, description="Local broker only: the KRaft controller's loopback port.")
    kafka_jars: Path = Field(Path.home() / ".cache" / "lmis" / "kafka-4.4.0",
                             description="Local broker only: folder with the Kafka 4.4 jars (`make kafka-jars`).")
    kafka_heap: str = Field("512m", description="Local broker only: JVM heap (-Xmx).")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret: environment only).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for TLS connections to Kafka.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of each event topic (created by `lmis stack up`).")
    topic_retention_hours: int = Field(
        -1, description="Retention of the event topics, hours (-1: forever). Kafka counts it from record timestamps, "
                        "which are the sources' emission times: a replayed past would be deleted at once.")
    dlq_retention_hours: int = Field(24 * 90, description="Retention of the dead-letter topic, hours.")
    web_host: str = Field("127.0.0.1",
                          description="The worker's HTTP server (API, board) binds here; loopback by default.")
    web_port: int = Field(6066, description="The worker's HTTP port.")
    api_token: SecretStr | None = Field(
        None, description="If set, the HTTP API requires `Authorization: Bearer <token>` (secret: environment only).")
    query_max_rows: int = Field(
        50_000, ge=1, description="Rows one API request or `lmis indicators` may return (non-empty cells); more is "
        "refused (HTTP 413) with how to narrow the request.")
    query_max_memory_mb: int = Field(
        512, ge=64, description="ClickHouse memory one query of the API or a command may use (MB); more fails it, "
        "not the worker.")
    query_max_seconds: int = Field(60, ge=1, description="ClickHouse time one query of the API or a command may "
                                   "take (s).")
    consumer_group: str = Field("lmis-trends", description="Kafka consumer group of the trend pipeline.")
    allowed_lateness_hours: float = Field(72, description="Events later than this (emission − occurrence) are "
                                          "dead-lettered as `too_late`; earlier ones update their past buckets.")
    future_tolerance_minutes: float = Field(60, description="Events that claim to occur this long after they were "
                                            "sent are dead-lettered as `future_occurred_at`.")
    duplicate_posting_window_hours: float = Field(168, description="The vacancy review merges a submission with the "
                                                  "same employer, title, region and occupation as a posted one "
                                                  "this long before it, while that one is open (docs/operations.md).")
    sink_max_rows: int = Field(20_000, description="Checkpoint after this many buffered messages ...")
    sink_max_seconds: float = Field(1.0, description="... or after this many seconds, whichever comes first "
                                    "(caught up with the live rate: as soon as no rollup is running).")
    classify_processes: int = Field(
        0, ge=0, le=64, description="Processes that validate the messages and build their rows beside the worker "
        "(0: in the worker's own pipeline thread). The worker's Python threads share one core's worth of time; these "
        "use spare cores, ~60 MB each (on 2 cores there are none: no faster, see docs/benchmarks.md). Exact either "
        "way: classifying is a pure function of the message.")
    rollup_interval_seconds: float = Field(1.0, description="How often changed days are rolled up.")
    freshness_target_seconds: float = Field(
        1.5, gt=0, description="Caught up with the live rate, an event is made visible in the measures within about "
        "this long of its arrival, and no sooner than needed: lower is fresher and costs more CPU (rollups closer "
        "together).")
    rollup_statements_at_once: int = Field(
        1, ge=1, le=3, description="Independent statements of a rollup of a backlog (more than 3 days) run at once "
        "on this many ClickHouse clients: 3 suits a ClickHouse server; on the embedded engine it drained a backlog "
        "~8 % faster and raised the worker's peak memory by ~100 MB. A rollup of the live days always runs them "
        "at once (3).")
    backlog_whole_rollup_seconds: float = Field(
        60.0, gt=0, description="Catching up on a backlog, a rollup rebuilds only the days the reading has passed "
        "in event time (each about once); the day being read shows once the worker is caught up, or at the latest "
        "after this long (a whole rollup).")
    health_interval_seconds: float = Field(5.0, description="How often pipeline health is written.")
    matching_enabled: bool = Field(True, description="Learn the job-matching model from the events and serve "
                                   "recommendations (`/api/recommendations/...`, `lmis recommend`).")
    matching_checkpoint_seconds: float = Field(30.0, description="How often the matcher's state is saved to "
                                               "`<data_dir>/matching/matcher.pkl` (a restart replays from there).")
    matching_exposure_share: float = Field(0.02, gt=0, le=1, description="No vacancy gets more than this share of "
                                           "a day's recommendations (exposure control).")
    matching_recommend_on_registration: int = Field(10, ge=0, description="Vacancies recommended to each newly "
                                                    "registered job seeker (0: none; the API still answers).")
    matching_candidates: int = Field(300, ge=10, description="Candidates scored per recommendation (same "
                                     "occupation and region first, then the occupation, then its major group).")
    alert_history_from: date | None = Field(
        None, description="Labour-market baselines use no day before this (YYYY-MM-DD): a go-live before which only "
        "the history of what was still open was loaded. Unset: from where each feed's national count is whole.")
    compiled_reader: bool = Field(True, description="Read the messages with the compiled reader when it is built "
                                  "(`native/`); false: every message the Python way (same results, slower).")
    insured_stock_file: Path | None = Field(
        None, description="The EI database's insured stock by region and industry (CSV: as_of,region,industry,"
        "insured), loaded when the worker starts: the daily 피보험자 수 is it plus the feed's acquisitions less its "
        "losses. Unset: no insured stock.")
    alertmanager_url: str | None = Field(
        None, description="The site's Prometheus Alertmanager (`http(s)://host:9093`): the worker posts alerts "
        "there and `lmis stack up` starts none. Unset: the local one.")
    alertmanager_port: int = Field(19094, description="Local Alertmanager only: its loopback port.")
    alertmanager_binary: Path = Field(Path.home() / ".cache" / "lmis" / "alertmanager-0.28.1" / "alertmanager",
                                      description="Local Alertmanager only: the binary (`make alertmanager`).")
    alert_email_to: str | None = Field(None, description="Alert e-mails to (comma separated): labour-market signals, "
                                       "and data faults unless `LMIS_ALERT_OPS_EMAIL_TO` is set.")
    alert_ops_email_to: str | None = Field(None, description="Data-fault alert e-mails to (comma separated).")
    alert_webhook_url: str | None = Field(None, description="Every alert, firing and resolved, is also posted here "
                                          "(Alertmanager's webhook format; chat tools).")
    alert_group_wait_seconds: int = Field(30, ge=0, description="Alertmanager waits this long to group a new "
                                          "alert's first notification with others.")
    alert_group_interval_seconds: int = Field(300, ge=1, description="... and this long before notifying a group's "
                                              "new or resolved alerts.")
    alert_repeat_hours: int = Field(4, ge=1, description="A firing alert is notified again after this long "
                                    "(critical ones after a quarter of it).")
    briefing_email_to: str | None = Field(None, description="The daily briefing e-mail to (comma separated). Unset: "
                                          "briefings are archived (board, API) but not sent.")
    briefing_lang: Literal["ko", "en"] = Field("ko", description="The daily briefing's language.")
    briefing_hour: int = Field(8, ge=0, le=23, description="The briefing of each day is due at this hour (Asia/Seoul, "
                               "event time) the next morning.")
    briefing_from: date | None = Field(None, description="The first day briefed (YYYY-MM-DD). Unset: the first day "
                                       "every headline feed counted something on (no briefing of a history load).")
    briefing_alert_after_minutes: int = Field(30, ge=1, description="A briefing that could not be sent for this long "
                                              "raises a data-fault alert for ops (retries go on).")
    smtp_host: str | None = Field(None, description="SMTP server for alert and briefing e-mails (unset: none sent).")
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_from: str = Field("lmis@localhost", description="The e-mails' sender.")
    smtp_username: str | None = Field(None, description="SMTP user name (none: no authentication).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (secret: environment only).")
    smtp_starttls: bool = Field(True, description="Require STARTTLS with the SMTP server.")
    smtp_ssl: bool = Field(False, description="Connect with TLS from the start (SMTPS, usually port 465) instead.")
    clickhouse_dsn: str | None = Field(
        None, description="ClickHouse: `chdb:///abs/path` (embedded, default `<data_dir>/clickhouse`) or "
                          "`http(s)://user:pass@host:8123/db`.")

    @property
    def clickhouse_url(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    def kafka_client_options(self) -> dict:
        """Connection options for kafka-python and aiokafka clients (TLS/SASL passed through)."""
        opts: dict = {"bootstrap_servers": self.kafka_bootstrap.split(","),
                      "security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = (self.kafka_sasl_password.get_secret_value()
                                           if self.kafka_sasl_password else None)
        if self.kafka_ssl_cafile:
            opts["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return opts


@cache
def get_settings() -> Settings:
    return Settings()


def settings_table() -> str:
    """The settings table of docs/operations.md, generated from the declarations above."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]  # noqa: E501
    for name, f in Settings.model_fields.items():
        default = f.default
        if name == "kafka_jars":
            default = "~/.cache/lmis/kafka-4.4.0"
        if name == "alertmanager_binary":
            default = "~/.cache/lmis/alertmanager-0.28.1/alertmanager"
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `LMIS_{name.upper()}` | {shown} | {f.description} |")
    return "\n".join(rows)
