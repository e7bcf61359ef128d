"""``lmis bench briefing``: the daily briefing read and rendered for a day of a national year (scale 1; the
board bench's measures), the message's size and images. Target: under 5 s."""

from __future__ import annotations

import shutil
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lmis.settings import Settings


@dataclass
class BriefingBench:
    render_ms: float  # median of the runs: read every number, draw the charts, render page and e-mail
    read_ms: float
    bytes: int
    images: int
    rows: int

    def line(self) -> str:
        return f"render_ms={self.render_ms:.0f} bytes={self.bytes} images={self.images}"


def run_briefing_bench(base: Settings, day: date = date(2025, 12, 15), repeats: int = 5, log=print) -> BriefingBench:
    import email
    from email.policy import default as default_policy

    from briefing.content import read
    from briefing.jobs import BriefingConfig, make
    from lmis.bench import national_year_measures
    from schemas.calendar import seoul_midnight
    from sinks.clickhouse import connect, migrate

    folder = (base.data_dir / "bench-briefing").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    client = connect(f"chdb://{folder}", database=f"briefing_{uuid.uuid4().hex[:8]}")
    migrate(client)
    log("loading a national year of measures ...")
    rows = national_year_measures(client, log=log)
    instant = (seoul_midnight(day + timedelta(days=1)) + timedelta(hours=8)).astimezone(UTC)
    cfg = BriefingConfig(recipients=("desk@moel.go.kr",), sender="lmis@keis.or.kr")
    totals, reads, made = [], [], None
    for _ in range(repeats):
        started = time.perf_counter()
        read(client, day, instant)
        reads.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        made = make(client, day, instant, cfg)
        totals.append((time.perf_counter() - started) * 1000)
    msg = email.message_from_string(made["message"], policy=default_policy)
    images = sum(1 for p in msg.walk() if p.get_content_type() == "image/png")
    log(f"briefing of {day} as of {datetime.fromtimestamp(instant.timestamp(), UTC).isoformat()}: "
        f"{made['subject']}")
    return BriefingBench(statistics.median(totals), statistics.median(reads), len(made["message"].encode()),
                         images, rows)
