"""Where the event-time scheduler keeps each job's place (``streams.schedule.RunLog``), in ClickHouse."""

from __future__ import annotations

from datetime import datetime

from sinks.clickhouse import as_utc


class ClickHouseRunLog:
    """``scheduled_runs`` (migration 0010): the newest row of a (job, instant) wins, done over armed."""

    def __init__(self, client):
        self.client = client

    def newest(self, job: str) -> tuple[datetime, bool] | None:
        rows = self.client.query(
            "SELECT instant, max(done) FROM scheduled_runs WHERE job = {job:String} "
            "GROUP BY instant ORDER BY instant DESC LIMIT 1", parameters={"job": job}).result_rows
        return (as_utc(rows[0][0]), bool(rows[0][1])) if rows else None

    def arm(self, job: str, instant: datetime) -> None:
        self.client.insert("scheduled_runs", [[job, instant, 0, None]],
                           column_names=["job", "instant", "done", "clock"])

    def done(self, job: str, instant: datetime, clock: datetime) -> None:
        self.client.insert("scheduled_runs", [[job, instant, 1, clock]],
                           column_names=["job", "instant", "done", "clock"])


def last_visible(client) -> datetime | None:
    """The newest visible clock a worker recorded (``pipeline_health.event_time``): how far the aggregates
    held the data when it last said so -- they still do after a restart."""
    rows = client.query("SELECT max(event_time), count() FROM pipeline_health WHERE event_time IS NOT NULL").result_rows
    return as_utc(rows[0][0]) if rows and rows[0][1] else None
