"""Exact measures, rebuilt per Asia/Seoul day from the stored events.

Why rebuild instead of counting on insert: a bucket's numbers are then a pure function of the events
stored for it -- counted once per ``event_id`` (re-sent duplicates and replays after a crash do not
count twice), with the vacancy review applied in event-time order -- so they are exact after any crash or
replay. A rollup writes under a new version and then records that version for its days in ``rollup_log``.

The counts and stocks (``daily_measures``, ``hourly_measures``) are read as the newest row of each cell
(bucket, measure, breakdown) among the versions up to its day's newest recorded one (:func:`newest_rows`;
migration 0009): a rollup rewrites only the cells that may have changed -- at the live rate, the cells of
the events written since the last rollup and of the submissions whose review decision changed; whole days
after a start-up, a failed rollup or for a backlog -- and writes a 0 for a cell it no longer counts. That is
what makes a live rollup cost what changed rather than the day (see docs/incremental-rollup.md). A version
left unrecorded by a crash or a failure is superseded: the next rollup rewrites its days whole.

The board's products (region totals, breakdowns, headline) are whole days of one version, read as the
day's newest recorded version. Every row goes into a *slot* (a key column; migration 0008) that the row
readers use for its key does not occupy: the tables keep the newest row of each key when they merge, and a
merge must never replace the rows readers use -- neither during a rollup nor after one cut short by a
crash. A rollup cut short is redone at start-up: its days hold events stored after the last recorded
rollup began.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, timedelta

from schemas.codes import code_list
from sinks.clickhouse import release_memory
from sinks.indicators import ACTIVE_SEEKER_DAYS, PLACEMENT_EVENTS
from sinks.insured import anchors as insured_anchors

FAR = "toDate('2149-06-06')"
FAR_TIME = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"

# One (measure, value) pair per count an event contributes to. Sub-measures carry a reason or outcome.
MEASURES_OF_EVENT = """
arrayConcat(
    [(toString(event_type), toInt64(1))],
    multiIf(
        event_type = 'vacancy.submitted',
            if(decision = 'posted', [('vacancy.posted', toInt64(1)), ('openings.posted', toInt64(openings))],
               if(decision = '', [], [(concat('vacancy.rejected:', decision), toInt64(1))])),
        event_type = 'vacancy.closed',
            [(concat('vacancy.closed:', toString(subtype)), toInt64(1)), ('openings.filled', toInt64(openings))],
        event_type IN ('application.outcome', 'ui.initial_claim', 'ui.claim_ended'),
            [(concat(toString(event_type), ':', toString(subtype)), toInt64(1))],
        CAST([], 'Array(Tuple(String, Int64))')))
"""


# The national headline of each day (what the board's first panel shows): (indicator, numerator measure,
# denominator measure or '' for a count). The ratios are the flow and stock 구인배수 of ``sinks.indicators``.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("ui.initial_claim", "ui.initial_claim", ""),
    ("openings.posted", "openings.posted", ""),
    ("seeker.registered", "seeker.registered", ""),
    ("application.outcome:hired", "application.outcome:hired", ""),
    ("insurance.acquisition", "insurance.acquisition", ""),
    ("insurance.loss", "insurance.loss", ""),
    ("stock.open_openings", "stock.open_openings", ""),
    ("stock.insured", "stock.insured", ""),
    ("ratio.offers_to_seekers", "openings.posted", "seeker.registered"),
    ("ratio.stock_offers_to_seekers", "stock.open_openings", "stock.active_seekers"),
)
BREAKDOWN_DIMENSIONS = ("industry", "occupation")
# The breakdown of a measure cell (after its bucket and measure).
CELL = ("region", "industry", "occupation", "age_band", "sex", "size_band")
CELL_SQL = ", ".join(CELL)
COUNTED = "NOT startsWith(measure, 'stock.')"  # the measures counted from events (the rest are stocks)
STOCKS = "measure IN ('stock.open_vacancies', 'stock.open_openings')"
# More cells to recount than this, and whole days are recounted (a listed cell costs a literal).
MAX_LISTED_CELLS = 2_000
# At the live rate a rollup covers today, and yesterday or the day before for late events.
LIVE_DAYS = 3
# A rollup's rows are unique per key (grouped by it), so ReplacingMergeTree's merge of each inserted block
# finds nothing to replace; it cost a third of writing them (measured: 608k hourly rows, 3.1 s -> 2.0 s).
WRITE = "optimize_on_insert = 0"


def _days(days: Iterable[date]) -> str:
    return ", ".join(f"toDate('{d.isoformat()}')" for d in sorted(set(days))) or "toDate('1970-01-01')"


def slot_sql(slots: dict[date, int], day: str) -> str:
    """SQL: the slot (migration 0008) that rows of the day ``day`` (an expression) are written into."""
    ordered = sorted(slots)
    return (f"transform({day}, [{_days(ordered)}], [{', '.join(str(slots[d]) for d in ordered) or '0'}], "
            "toUInt8(0))")


def day_of(bucket: str) -> str:
    """SQL: the Asia/Seoul day of a bucket column (``day`` or ``hour``)."""
    return "day" if bucket == "day" else f"toDate({bucket}, 'Asia/Seoul')"


def newest_rows(table: str, bucket: str, where: str, bound: str) -> str:
    """SQL: the measure cells of ``table`` as readers see them -- the newest row of each (bucket, measure,
    breakdown) among the rows ``where`` selects with a version up to ``bound`` (an expression; the day's newest
    recorded version for readers), without the cells counted 0 (no longer counted)."""
    return f"""
        SELECT {bucket}, measure, {CELL_SQL}, argMax(value, version) AS value
        FROM {table}
        WHERE ({where}) AND version <= {bound}
        GROUP BY {bucket}, measure, {CELL_SQL}
        HAVING value != 0"""


def latest_versions(lo: str, hi: str) -> str:
    """SQL: the newest complete rollup version of each day in [lo, hi] (SQL dates): (recorded_day, recorded)."""
    return (f"SELECT day AS recorded_day, max(version) AS recorded FROM rollup_log "
            f"WHERE day BETWEEN {lo} AND {hi} GROUP BY day")


def recorded_measures(table: str, bucket: str, where: str, lo: str, hi: str) -> str:
    """SQL: :func:`newest_rows` for readers, of the days in [lo, hi] (SQL dates) with a recorded rollup."""
    day = day_of(bucket)
    return newest_rows(f"{table} INNER JOIN ({latest_versions(lo, hi)}) AS r ON r.recorded_day = {day}",
                       bucket, f"{day} BETWEEN {lo} AND {hi} AND ({where})", "recorded")


def _version_of_day(versions: dict[date, tuple[int, int]], day: str) -> str:
    """SQL: the version ``versions`` gives the day ``day`` (an expression), 0 for a day it lacks."""
    ordered = sorted(versions)
    return (f"transform({day}, [{_days(ordered)}], [{', '.join(str(versions[d][0]) for d in ordered) or '0'}], "
            "toUInt64(0))")


def _quote(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cells_literal(cells: Iterable[tuple]) -> str:
    return ", ".join(f"(toDate('{c[0].isoformat()}'), {', '.join(_quote(v) for v in c[1:])})"
                     for c in sorted(cells))


def cell_scope(day: str, cells: set[tuple] | None) -> str:
    """SQL: rows of the measure ``cells`` (day, *CELL), ``day`` being the SQL of a row's day; every row for
    None. The regions and occupations first: single columns, cheap to test, rule most rows out."""
    if cells is None:
        return "1"
    if not cells:
        return "0"
    regions = ", ".join(_quote(r) for r in sorted({c[1] for c in cells}))
    occupations = ", ".join(_quote(o) for o in sorted({c[3] for c in cells}))
    return (f"region IN ({regions}) AND occupation IN ({occupations}) "
            f"AND ({day}, {CELL_SQL}) IN ({_cells_literal(cells)})")


def unique_events(where: str, few: bool = False) -> str:
    """SQL: stored events counted once per event_id (the first offset wins; all copies are identical).

    Only the re-sent ones (an event_id stored more than once) are sorted to find their first copy: sorting
    every event of whole days ran the rest of a statement on one stream (measured on the bench's backlog: the
    hours' statement 0.65-0.73 s instead of 0.78-0.92, the same rows). ``few``: ``where`` selects few events
    but is long (a live rollup's listed cells), so it is written once and they are all sorted."""
    if few:
        return f"SELECT *, day, hour FROM events WHERE {where} ORDER BY topic, partition, offset LIMIT 1 BY event_id"
    return (f"WITH scoped AS (SELECT *, day, hour FROM events WHERE {where}), "
            "resent AS (SELECT event_id FROM scoped GROUP BY event_id HAVING count() > 1) "
            "SELECT * FROM scoped WHERE event_id NOT IN resent "
            "UNION ALL SELECT * FROM (SELECT * FROM scoped WHERE event_id IN resent "
            "ORDER BY topic, partition, offset LIMIT 1 BY event_id)")


@dataclass
class RollupReport:
    days: int
    seconds: float
    version: int
    partial: bool = False  # days from ``before`` on were left for a later rollup


def record_clean_stop(client) -> None:
    """Record that every event stored so far is rolled up (a worker stopping cleanly). Only on the client and
    thread that write the events, after the last write and the rollup that took it: a write after it is
    stored later by the engine's clock, so a start-up finds its days (``Rollup.dirty_since_last_rollup``)."""
    client.command("INSERT INTO clean_stops (stopped_at) SELECT now64(3)")


Statement = Callable[[object], object]  # one statement of a rollup, given the client to run it on


class Rollup:
    """Rebuilds the measures of the days touched by new events (and the days their changes reach).

    With ``more_clients``, the statements that do not depend on each other run at once, each on a client of
    its own: a client runs one statement at a time (the embedded engine's handle; an HTTP session), the
    engine runs several and a single statement leaves cores idle. Measured on the embedded engine over 157
    days: counts per day and hour and the stocks 1.6 s one after another, 1.1 s together."""

    def __init__(self, client, duplicate_window: timedelta = timedelta(days=7), more_clients: Sequence = (),
                 backlog_lanes: int | None = None):
        self.client = client
        self.clients = (client, *more_clients)
        self._pool = ThreadPoolExecutor(len(more_clients), "lmis-rollup-part") if more_clients else None
        self.window = duplicate_window
        self.window_days = duplicate_window.days + (1 if duplicate_window.seconds else 0)
        # A rollup of more than LIVE_DAYS days (a backlog) runs at most this many statements at once (None:
        # one per client). Its statements at once raise the engine's peak memory with the days they cover;
        # the live days' rollups are small, and their speed is the freshness of what the officials see.
        self.backlog_lanes = backlog_lanes

    def _lanes(self, days: int) -> int:
        """How many statements a rollup of this many days runs at once."""
        if self.backlog_lanes is None or days <= LIVE_DAYS:
            return len(self.clients)
        return max(1, min(self.backlog_lanes, len(self.clients)))

    def _together(self, at_once: int, *statements: Statement) -> None:
        """Run independent statements, at most ``at_once`` at a time (each on a client of its own); returns
        when all are done (raising the first failure), so that what follows may read what they wrote."""
        width = min(at_once, len(statements))
        lanes = [statements[i::width] for i in range(width)]

        def run(lane: Sequence[Statement], client) -> None:
            for statement in lane:
                statement(client)

        others = [self._pool.submit(run, lane, client)  # type: ignore[union-attr]
                  for lane, client in zip(lanes[1:], self.clients[1:], strict=False)]
        try:
            run(lanes[0], self.client)
        finally:
            wait(others)
        for future in others:
            future.result()

    def _version(self) -> int:
        # Strictly increasing across restarts: wall-clock nanoseconds.
        return time.time_ns()

    def event_days_range(self) -> tuple[date, date] | None:
        lo, hi = self.client.query("SELECT min(day), max(day) FROM events").result_rows[0]
        if not self.client.query("SELECT count() FROM events").result_rows[0][0]:
            return None
        return lo, hi

    def dirty_since_last_rollup(self) -> set[date]:
        """Days with events stored after the newest rollup that recorded the day began, or after the last
        clean stop if that is later (used at start-up): the days a crash could have left behind, and no
        others -- a backlog's partial rollups record the days they finished, so a worker killed while
        catching up rebuilds the days it was reading, not every day since its last whole rollup."""
        # The margin: a write begun before the rollup (its stored_at) may be acknowledged after it began, and a
        # server's clock is not the worker's. A clean stop since needs none (``record_clean_stop``).
        return {r[0] for r in self.client.query("""
            SELECT e.day
            FROM (SELECT day, max(stored_at) AS last_stored FROM events GROUP BY day) AS e
            LEFT JOIN (SELECT day, max(version) AS v FROM rollup_log GROUP BY day) AS r ON r.day = e.day
            WHERE e.last_stored >= greatest(fromUnixTimestamp64Nano(toInt64(r.v), 'UTC') - INTERVAL 5 SECOND,
                                            (SELECT max(stopped_at) FROM clean_stops))
            SETTINGS join_use_nulls = 0
        """).result_rows}

    def run(self, dirty: set[date], touched_vacancies: set[str] | None = None,
            touched_cells: set[tuple] | None = None, before: date | None = None) -> RollupReport | None:
        """Rebuild what ``dirty`` days reach. ``touched_vacancies``, ``touched_cells``: the vacancies and the
        measure cells (day, *CELL) of the events stored since the last rollup began, if known (None: every
        vacancy with events on the dirty days, and the dirty days' cells whole).

        ``before``: the first of the days left dirty for a later rollup (a backlog's days still being read),
        which rebuilds what they reach (the reviews, counts and stocks from that day on); nothing from it on
        is rebuilt now. Every ``dirty`` day must be earlier. The rollup is then recorded ``partial``."""
        if not dirty:
            return None
        if before is not None and max(dirty) >= before:
            raise ValueError(f"dirty day {max(dirty)} is not before {before}: a partial rollup leaves it")
        started = time.monotonic()
        span = self.event_days_range()
        if span is None:
            return None
        first_day, last_day = span
        if before is not None:
            last_day = min(last_day, before - timedelta(days=1))
        version = self._version()
        # A submission's review can change the decisions of later submissions inside the window.
        review_days = {d + timedelta(days=k) for d in dirty for k in range(self.window_days + 1)}
        review_days = {d for d in review_days if d <= last_day}
        # No vacancy event since the last rollup (known at the live rate): the reviews, the vacancies'
        # states and the stocks of the days rolled up before stand.
        vacancies_changed = touched_vacancies is None or bool(touched_vacancies)
        if vacancies_changed:
            review_days = self._reviews(review_days, version, last_day)
        # Stocks of every day from the earliest change on depend on it.
        stock_from = max(min(dirty), first_day)
        stock_days = {stock_from + timedelta(days=k) for k in range((last_day - stock_from).days + 1)}
        days = dirty | review_days | stock_days
        recorded = self.recorded(days)
        slots = {d: 1 - recorded[d][1] if d in recorded else 1 for d in days}
        if not vacancies_changed:
            stock_days = {d for d in stock_days if d not in recorded}
        # Counts change only where events were stored or review decisions changed.
        count_days = dirty | review_days
        cells = self._cells_to_recount(touched_cells, review_days, version, vacancies_changed)
        # The counts and the stocks read the review decisions; the day's counts sum the hours' just written,
        # and the active seekers read the day's; the region totals and the board's products read the counts
        # and the stocks; rollup_log records the version once everything is written.
        self._together(self._lanes(len(days)),
                       lambda c: (self._hourly_counts(c, count_days, cells, version, recorded),
                                  self._daily_counts(c, count_days, cells, version, recorded),
                                  self._active_seekers(c, days, version, recorded),
                                  self._insured_stock(c, days, version, recorded)),
                       lambda c: (vacancies_changed and self._vacancy_states(c, dirty, review_days, version,
                                                                             touched_vacancies),
                                  self._stocks(c, stock_days, version, recorded)))
        # Every row newer than the recorded versions is this version's unless a rollup failed or was cut
        # short (then the cells are recounted whole: ``cells`` is None). Days whose counts and stocks were
        # both rewritten whole have every cell in this version.
        rewritten = cells is None and count_days >= days and stock_days >= days
        self.board_products(days, version, slots, None if cells is None else recorded, rewritten)
        self.record(version, slots, partial=before is not None)
        # What the statements allocated is freed but kept by the engine's allocator; the worker's memory is
        # measured as what it holds.
        release_memory(self.client)
        return RollupReport(len(days), time.monotonic() - started, version, before is not None)

    def recorded(self, days: set[date]) -> dict[date, tuple[int, int]]:
        """(newest recorded version, its slot) of each of ``days`` that has one."""
        return {d: (v, s) for d, v, s in self.client.query(
            f"SELECT day, max(version), argMax(slot, version) FROM rollup_log WHERE day IN ({_days(days)}) "
            "GROUP BY day").result_rows}

    def record(self, version: int, slots: dict[date, int], partial: bool = False) -> None:
        """Readers use the days' rows of ``version`` from now on."""
        self.client.insert("rollup_log", [[d, version, slots[d], int(partial)] for d in sorted(slots)],
                           column_names=["day", "version", "slot", "partial"])

    def _cells_to_recount(self, touched: set[tuple] | None, review_days: set[date], version: int,
                          reviewed: bool) -> set[tuple] | None:
        """The touched cells and those of the submissions whose decision this version's review (if
        ``reviewed``) changed -- the review writes only those (:meth:`_reviews`); None for whole days."""
        if touched is None or len(touched) > MAX_LISTED_CELLS:
            return None
        if not reviewed:
            return touched
        r = _days(review_days)
        changed = self.client.query(f"""
            SELECT DISTINCT day, {CELL_SQL} FROM events
            WHERE event_type = 'vacancy.submitted' AND day IN ({r}) AND event_id IN (
                SELECT event_id FROM vacancy_reviews WHERE day IN ({r}) AND version = {version})
        """).result_rows
        cells = touched | {tuple(c) for c in changed}
        return cells if len(cells) <= MAX_LISTED_CELLS else None

    def _replace(self, client, table: str, bucket: str, new_values: str, days: Iterable[date], measures: str,
                 version: int, recorded: dict[date, tuple[int, int]], cells: str = "1") -> None:
        """Write ``new_values`` (SQL: the bucket, measure, CELL and value of the cells now) over the cells of
        ``days`` that ``measures`` and ``cells`` (SQL conditions) select: a cell with a value gets it, one
        whose newest row holds a value and that has none now gets 0 (readers leave it out); each into the
        slot that the row readers use for it does not occupy; in ``daily_measures`` with the change
        (``delta``) the board's products add up.
        Rows of a version left unrecorded count as newest rows here: a cell such a version wrote and that
        has no value now is set to 0 too."""
        day = day_of(bucket)
        key = f"{bucket}, measure, {CELL_SQL}"
        bound = _version_of_day(recorded, day)
        delta = table == "daily_measures"
        older = f"{day} IN ({_days(days)}) AND ({measures}) AND version < {version}"
        # (Asked without the cells: testing a live rollup's listed cells on every row of the day costs more
        # than the answer saves; a day whose measures have rows is merged, as always.)
        if not client.query(f"SELECT 1 FROM {table} WHERE {older} LIMIT 1").result_rows:
            # No row to replace (days never rolled up: a backlog's): the cells as they are now, each in slot 0
            # as below. Merging with nothing cost a quarter of the hours' statement (measured, 33 days).
            client.command(f"""
                INSERT INTO {table} ({key}, value, version, slot{", delta" if delta else ""})
                SELECT {key}, value, {version}, 0{", value" if delta else ""} FROM ({new_values})
                SETTINGS {WRITE}
            """)
            return
        client.command(f"""
            INSERT INTO {table} ({key}, value, version, slot{", delta" if delta else ""})
            SELECT {key}, sumIf(value, fresh), {version},
                   if(countIf(readers) > 0, 1 - argMaxIf(slot, version, readers), 0)
                   {", sumIf(value, fresh) - argMaxIf(value, version, NOT fresh)" if delta else ""}
            FROM (
                SELECT {key}, value, true AS fresh, toUInt64(0) AS version, toUInt8(0) AS slot, false AS readers
                FROM ({new_values})
                UNION ALL
                SELECT {key}, value, false, version, slot, version <= {bound}
                FROM {table}
                WHERE {older} AND ({cells})
            )
            GROUP BY {key}
            HAVING countIf(fresh) > 0 OR argMaxIf(value, version, NOT fresh) != 0
            SETTINGS join_use_nulls = 0, {WRITE}
        """)

    def _reviews(self, days: set[date], version: int, last_day: date | None = None) -> set[date]:
        """Review every submission of ``days`` again, and write the decisions that changed (a submission's
        first among them) under ``version``. Only those: the engine's merges keep just each submission's newest
        decision, whenever they run, so what a review changed must be readable from its own rows -- when every
        decision was written and compared with the version before, a merge between the two made every
        submission of the days read as changed, and a live rollup recounted whole days (bench run 78).

        The duplicate rule: a submission that passes the other rules is merged when a *posted* submission with
        the same employer, title key, region and occupation occurred at most the window before it and its
        vacancy was still open (not closed, its deadline day not over); otherwise it is posted and starts a
        window of its own. A change can thus move every later window of that
        posting: while decisions of the last window reviewed changed, the next window (up to ``last_day``) is
        reviewed too. Returns the days reviewed."""
        reviewed: set[date] = set()
        while days:
            self._review_once(days, version)
            reviewed |= days
            end = max(days)
            tail = {end - timedelta(days=k) for k in range(self.window_days + 1)}
            if last_day is None or end >= last_day or not self.client.query(
                    f"SELECT 1 FROM vacancy_reviews WHERE version = {version} AND day IN ({_days(tail)}) "
                    "LIMIT 1").result_rows:
                break
            days = {end + timedelta(days=k) for k in range(1, self.window_days + 2)}
            days = {d for d in days if d <= last_day}
        return reviewed

    def _review_once(self, days: set[date], version: int) -> None:
        lo = min(days) - timedelta(days=self.window_days + 1)
        seed_lo = lo - timedelta(days=self.window_days + 1)
        window_ms = int(self.window.total_seconds() * 1000)
        d = _days(days)
        key = "employer_id, title_key, region, occupation"
        passing = "event_type = 'vacancy.submitted' AND review_rule = ''"

        def submissions(first: date, last: date) -> str:
            # Each submission with the end of its vacancy, were it posted: its first close event, or the end
            # of the deadline day the submission gave (a deadline changed later does not reopen the past).
            scope = f"{passing} AND day BETWEEN toDate('{first.isoformat()}') AND toDate('{last.isoformat()}')"
            return f"""
                SELECT s.*, least(if(c.closed_at IS NULL, {FAR_TIME}, assumeNotNull(c.closed_at)),
                                  toDateTime64(toDateTime(addDays(assumeNotNull(s.deadline), 1), 'Asia/Seoul'), 3,
                                               'UTC')) AS end_at
                FROM ({unique_events(scope)}) AS s
                LEFT JOIN (SELECT vacancy_id, min(closed_at) AS closed_at FROM vacancy_lifecycle
                           WHERE vacancy_id IN (SELECT vacancy_id FROM events WHERE {scope})
                           GROUP BY vacancy_id) AS c ON c.vacancy_id = s.vacancy_id"""

        # Each key's submissions in event-time order, folded into posted (1) or merged (0): merged while the
        # newest posted one is at most the window earlier and still open; seeded with the newest posted before
        # the range (as recorded).
        self.client.command(f"""
            INSERT INTO vacancy_reviews (day, event_id, vacancy_id, decision, version)
            SELECT n.day, n.event_id, n.vacancy_id, n.decision, {version}
            FROM (
                SELECT day, event_id, vacancy_id, toString(review_rule) AS decision
                FROM ({unique_events(f"event_type = 'vacancy.submitted' AND review_rule != '' AND day IN ({d})")})
                UNION ALL
                SELECT s.3 AS day, s.2 AS event_id, s.4 AS vacancy_id,
                       if(posted = 1, 'posted', 'duplicate_posting') AS decision
                FROM (
                    SELECT g.subs AS subs,
                           arrayFold((acc, x) -> if(dateDiff('millisecond', acc.1, x.1) <= {window_ms}
                                                    AND x.1 < acc.2,
                                                    (acc.1, acc.2, arrayPushBack(acc.3, toUInt8(0))),
                                                    (x.1, x.5, arrayPushBack(acc.3, toUInt8(1)))),
                                     g.subs, (seed.anchor, seed.anchor_end, CAST([], 'Array(UInt8)'))).3 AS flags
                    FROM (
                        SELECT {key}, arraySort(groupArray((occurred_at, event_id, day, vacancy_id, end_at))) AS subs
                        FROM ({submissions(lo, max(days))})
                        GROUP BY {key}
                    ) AS g
                    LEFT JOIN (
                        SELECT {key}, max(e.occurred_at) AS anchor, argMax(e.end_at, e.occurred_at) AS anchor_end
                        FROM ({submissions(seed_lo, lo - timedelta(days=1))}) AS e
                        INNER JOIN (SELECT event_id FROM vacancy_reviews FINAL
                                    WHERE day BETWEEN toDate('{seed_lo.isoformat()}')
                                          AND toDate('{(lo - timedelta(days=1)).isoformat()}')
                                          AND decision = 'posted') AS r ON r.event_id = e.event_id
                        GROUP BY {key}
                    ) AS seed ON seed.employer_id = g.employer_id AND seed.title_key = g.title_key
                                 AND seed.region = g.region AND seed.occupation = g.occupation
                )
                ARRAY JOIN subs AS s, flags AS posted
                WHERE s.3 IN ({d})
            ) AS n
            LEFT JOIN ({self._decisions(d)}) AS o ON o.event_id = n.event_id
            WHERE n.decision != o.decision  -- none yet: '' (a decision is never empty)
            SETTINGS join_use_nulls = 0, {WRITE}
        """)

    def _decisions(self, days: str) -> str:
        # FINAL: the newest version per (day, event_id), which is per event (its day is its own); measured
        # several times cheaper than an argMax over every version.
        return f"SELECT event_id, decision FROM vacancy_reviews FINAL WHERE day IN ({days})"

    def _hourly_counts(self, client, days: set[date], cells: set[tuple] | None, version: int,
                       recorded: dict[date, tuple[int, int]]) -> None:
        """Every count measure of the events of ``days`` per hour and breakdown: of the ``cells`` listed, or of
        whole days (None). A cell's events are counted whole (each event once: its copies are identical, so
        they fall in the same cell)."""
        if cells is not None and not cells:
            return
        d = _days(days)
        new_values = f"""
            SELECT hour, m.1 AS measure, {CELL_SQL}, sum(m.2) AS value
            FROM (
                SELECT e.hour AS hour, e.event_type AS event_type, e.subtype AS subtype,
                       e.openings AS openings, e.region AS region, e.industry AS industry,
                       e.occupation AS occupation, e.age_band AS age_band, e.sex AS sex, e.size_band AS size_band,
                       r.decision AS decision
                FROM ({unique_events(f"day IN ({d}) AND {cell_scope('day', cells)}", few=cells is not None)}) AS e
                LEFT JOIN ({self._decisions(d)}) AS r ON r.event_id = e.event_id
            )
            ARRAY JOIN {MEASURES_OF_EVENT} AS m
            GROUP BY hour, measure, {CELL_SQL}"""
        self._replace(client, "hourly_measures", "hour", new_values, days, COUNTED, version, recorded,
                      cell_scope(day_of("hour"), cells))

    def _daily_counts(self, client, days: set[date], cells: set[tuple] | None, version: int,
                      recorded: dict[date, tuple[int, int]]) -> None:
        """The same cells per day, summed from the hours :meth:`_hourly_counts` just wrote under ``version``:
        it rewrote every hour of each cell (a 0 for an hour no longer counted), so a day's cell is the sum of
        its hours. Measured on the bench's store: a third of the cost of counting the events again."""
        if cells is not None and not cells:
            return
        hour_day = day_of("hour")
        new_values = f"""
            SELECT {hour_day} AS day, measure, {CELL_SQL}, sum(value) AS value
            FROM hourly_measures
            WHERE version = {version} AND {hour_day} IN ({_days(days)}) AND {cell_scope(hour_day, cells)}
            GROUP BY day, measure, {CELL_SQL}"""
        self._replace(client, "daily_measures", "day", new_values, days, COUNTED, version, recorded,
                      cell_scope("day", cells))

    def _active_seekers(self, client, days: set[date], version: int,
                        recorded: dict[date, tuple[int, int]]) -> None:
        # 유효구직자 per region at the end of each day, as ``indicators.active_job_seekers`` defines them: a
        # seeker's newest registration is valid for 90 days and ends at their placement. Each registration
        # is a spell (from its day to the day before its seeker's next registration or placement, or 89
        # days on); a region's stock on a day is the spells begun by then minus those ended, a running sum.
        lo, hi = min(days), max(days)
        first, last = f"toDate('{lo.isoformat()}') - {ACTIVE_SEEKER_DAYS - 1}", f"toDate('{hi.isoformat()}')"
        placed = " OR ".join(f"(event_type = '{t}' AND subtype = '{s}')" for t, s in PLACEMENT_EVENTS)
        regions = ", ".join(f"'{c.code}'" for c in code_list("regions"))
        new_values = f"""
            SELECT day, 'stock.active_seekers' AS measure, region, '' AS industry, '' AS occupation,
                   '' AS age_band, '' AS sex, '' AS size_band, value
            FROM (
                SELECT day, region,
                       sum(sum(delta)) OVER (PARTITION BY region ORDER BY day ROWS UNBOUNDED PRECEDING) AS value
                FROM (
                    -- each spell once (a CTE would be computed for every reference): +1 on its first day,
                    -- -1 on the day after its last
                    SELECT e.1 AS day, region, e.2 AS delta
                    FROM (
                        SELECT s.2 AS region, s.3 AS start,
                               least(s.3 + {ACTIVE_SEEKER_DAYS - 1},
                                     if(i < length(regs), regs[i + 1].3 - 1, {FAR}),
                                     if(p > 0, toDate(placed_at[p], 'Asia/Seoul') - 1, {FAR})) AS finish
                        FROM (
                            SELECT r.regs AS regs, p.placed_at AS placed_at
                            FROM (
                                -- copies of an event are identical: one tuple each
                                SELECT entity_id AS seeker_id,
                                       arraySort(groupUniqArray((occurred_at, region, day))) AS regs
                                FROM events
                                WHERE event_type = 'seeker.registered' AND day BETWEEN {first} AND {last}
                                GROUP BY seeker_id
                            ) AS r
                            LEFT JOIN (
                                SELECT JSONExtractString(message, 'payload', 'seeker_id') AS seeker_id,
                                       arraySort(groupArray(occurred_at)) AS placed_at
                                FROM events
                                WHERE day BETWEEN {first} AND {last} AND ({placed})
                                GROUP BY seeker_id
                            ) AS p USING seeker_id
                        )
                        ARRAY JOIN regs AS s, arrayEnumerate(regs) AS i,
                                   arrayMap(x -> arrayFirstIndex(h -> h >= x.1, placed_at), regs) AS p
                    )
                    ARRAY JOIN [(start, 1), (finish + 1, -1)] AS e
                    WHERE finish >= start
                    UNION ALL
                    -- every day of every region, so that each has its running sum
                    SELECT d, region, 0 FROM (SELECT arrayJoin([{regions}]) AS region)
                    ARRAY JOIN arrayMap(k -> {first} + k, range(dateDiff('day', {first}, {last}) + 1)) AS d
                )
                GROUP BY day, region
            )
            WHERE day IN ({_days(days)}) AND value != 0"""
        self._replace(client, "daily_measures", "day", new_values, days, "measure = 'stock.active_seekers'",
                      version, recorded)

    def _insured_stock(self, client, days: set[date], version: int,
                       recorded: dict[date, tuple[int, int]]) -> None:
        # 피보험자 수 per region at the end of each day: the latest EI-database snapshot on or before it plus
        # the acquisitions less the losses after the snapshot, up to the day. No snapshot before a day: no
        # stock that day (the measure's rows there become 0).
        known = insured_anchors(client)
        if not known:
            return
        anchored: dict[date, list[date]] = {}
        for day in days:
            before = [a for a in known if a <= day]
            if before:
                anchored.setdefault(before[-1], []).append(day)
        d = _days(days)
        flows = "measure IN ('insurance.acquisition', 'insurance.loss')"
        sign = "if(measure = 'insurance.acquisition', 1, -1) * toInt64(value)"
        parts = []
        for anchor, targets in sorted(anchored.items()):
            a, hi = f"toDate('{anchor.isoformat()}')", f"toDate('{max(targets).isoformat()}')"
            current = newest_rows("daily_measures", "day", f"{flows} AND day IN ({d}) AND day > {a}", str(version))
            parts.append(f"""
            SELECT t AS day, region, sum(v) AS value
            FROM (
                SELECT {a} AS flow_day, region, toInt64(sum(insured)) AS v
                FROM insured_stock_base FINAL WHERE as_of = {a} GROUP BY region
                UNION ALL
                SELECT day, region, {sign} FROM ({current})
                UNION ALL
                -- the other days' region totals, as recorded
                SELECT day, region, {sign} FROM measures_by_region
                WHERE {flows} AND day NOT IN ({d}) AND day > {a} AND day <= {hi}
            )
            ARRAY JOIN [{_days(targets)}] AS t
            WHERE flow_day <= t  -- (not ``day``: the alias of t above)
            GROUP BY t, region""")
        new_values = ("SELECT day, 'stock.insured' AS measure, region, '' AS industry, '' AS occupation, "
                      "'' AS age_band, '' AS sex, '' AS size_band, value FROM ("
                      + (" UNION ALL ".join(parts) or "SELECT toDate(0) AS day, '' AS region, toInt64(0) AS value")
                      + ") WHERE value != 0")
        self._replace(client, "daily_measures", "day", new_values, days, "measure = 'stock.insured'",
                      version, recorded)

    def board_products(self, days: set[date], version: int, slots: dict[date, int],
                       recorded: dict[date, tuple[int, int]] | None = None, rewritten: bool = False) -> None:
        """What the board reads, from the days' measures as of ``version``: region totals, per-dimension
        breakdowns, and the headline (from the region totals); whole days of ``version``, into ``slots``.
        With ``recorded`` (the days' recorded versions, when every row newer than them is of ``version``),
        the recorded products plus the changes of the cells ``version`` rewrote -- a live rollup's few;
        else summed from every cell: from ``version``'s rows alone if it ``rewritten`` every cell of the
        days (a backlog's rollup; no search for each cell's newest row), else from each cell's newest."""
        d = _days(days)
        slot = slot_sql(slots, "day")
        if recorded is None:
            cells = (f"SELECT day, measure, {CELL_SQL}, value FROM daily_measures "
                     f"WHERE day IN ({d}) AND version = {version}" if rewritten
                     else newest_rows("daily_measures", "day", f"day IN ({d})", str(version)))
            before = "0"
        else:
            cells = (f"SELECT day, measure, {CELL_SQL}, delta AS value FROM daily_measures "
                     f"WHERE day IN ({d}) AND version = {version}")
            before = f"day IN ({_days(recorded)}) AND version = {_version_of_day(recorded, 'day')}"

        def region_totals(client) -> None:
            client.command(f"""
                INSERT INTO daily_region_measures (day, measure, region, value, version, slot)
                SELECT day, measure, region, sum(value), {version}, {slot}
                FROM (SELECT day, measure, region, value FROM ({cells})
                      UNION ALL
                      SELECT day, measure, region, value FROM daily_region_measures WHERE {before})
                GROUP BY day, measure, region
                HAVING sum(value) != 0
                SETTINGS {WRITE}
            """)

        def breakdown(dimension: str, other: str) -> Statement:
            return lambda client: client.command(f"""
                INSERT INTO daily_dimension_measures
                    (day, measure, dimension, region, filter, code, value, version, slot)
                SELECT day, measure, '{dimension}|{other}', r, f, code, sum(value), {version}, {slot}
                FROM (SELECT day, measure, r, f, {dimension} AS code, value FROM ({cells})
                      ARRAY JOIN [region, ''] AS r
                      ARRAY JOIN if({other} = '', [''], [{other}, '']) AS f
                      UNION ALL
                      SELECT day, measure, region, filter, code, value FROM daily_dimension_measures
                      WHERE {before} AND dimension = '{dimension}|{other}')
                GROUP BY day, measure, r, f, code
                HAVING sum(value) != 0
                SETTINGS {WRITE}
            """)

        self._together(self._lanes(len(days)), region_totals,
                       *(breakdown(dimension, other) for dimension, other
                         in (BREAKDOWN_DIMENSIONS, BREAKDOWN_DIMENSIONS[::-1])))
        self.client.command(headline_sql(f"day IN ({d}) AND version = {version}", str(version), slot))

    def _vacancy_states(self, client, dirty: set[date], review_days: set[date], version: int,
                        touched: set[str] | None) -> None:
        """The states of the vacancies that may have changed, which are every vacancy with events on the
        ``dirty`` days or a submission on the ``review_days`` (its decision was just reviewed again). Where the
        vacancies with new events are known (``touched``; the live rate), only those and the ones whose
        decision this rollup's review changed (the rows it wrote) -- the states are then up to date with the
        previous version, since every rollup of the process before succeeded (a failed one leaves ``touched``
        unknown, as a start-up does)."""
        if touched is None or len(touched) > MAX_LISTED_VACANCIES:
            only = (f"vacancy_id IN (SELECT vacancy_id FROM events WHERE event_type IN {VACANCY_EVENTS} AND (day IN "
                    f"({_days(dirty)}) OR (event_type = 'vacancy.submitted' AND day IN ({_days(review_days)}))))")
        else:
            listed = ", ".join(_vacancy_literal(v) for v in sorted(touched)) or "''"
            only = f"""(vacancy_id IN ({listed}) OR vacancy_id IN (
                SELECT vacancy_id FROM vacancy_reviews WHERE day IN ({_days(review_days)}) AND version = {version}))"""
        client.command(vacancy_states_sql(only, str(version)))

    def missing_vacancy_states(self, version: int = 1) -> None:
        """The states of vacancies that have none (stored before ``vacancy_states`` existed); at start-up."""
        self.client.command(vacancy_states_sql(
            "vacancy_id NOT IN (SELECT vacancy_id FROM vacancy_states)", str(version)))

    def _stocks(self, client, days: set[date], version: int, recorded: dict[date, tuple[int, int]]) -> None:
        """Open vacancies and openings at the end of each of ``days``: posted on or before the day and not
        yet closed -- closed by an event or, in event time, at the end of the deadline day."""
        if not days:
            return
        lo, hi = min(days), max(days)
        lo_s, hi_s = f"toDate('{lo.isoformat()}')", f"toDate('{hi.isoformat()}')"
        new_values = f"""
            SELECT d AS day, m.1 AS measure, region, industry, occupation, '' AS age_band, '' AS sex, size_band,
                   sum(m.2) AS value
            FROM (SELECT region, industry, occupation, size_band, posted_day, close_day, openings
                  FROM vacancy_states FINAL
                  WHERE posted AND close_day > {lo_s} AND posted_day <= {hi_s}) AS v
            ARRAY JOIN arrayMap(i -> greatest(v.posted_day, {lo_s}) + i,
                                range(toUInt32(greatest(0, dateDiff('day', greatest(v.posted_day, {lo_s}),
                                                                    least(v.close_day, {hi_s} + 1)))))) AS d
            ARRAY JOIN [('stock.open_vacancies', toInt64(1)), ('stock.open_openings', toInt64(v.openings))] AS m
            WHERE d IN ({_days(days)})
            GROUP BY day, measure, region, industry, occupation, size_band"""
        self._replace(client, "daily_measures", "day", new_values, days, STOCKS, version, recorded)


def headline_sql(where: str, version: str, slot: str) -> str:
    """SQL: insert the headline indicators of the days of ``daily_region_measures`` that ``where`` selects
    (``slot``: the slot's SQL, of ``day``)."""
    items = ", ".join(f"('{k}', '{n}', '{d}')" for k, n, d in HEADLINE)
    measures = ", ".join(sorted({f"'{m}'" for _, n, d in HEADLINE for m in (n, d) if m}))
    return f"""
        INSERT INTO daily_headline (day, indicator, value, version, slot)
        SELECT day, h.1,
               if(h.3 = '', toNullable(toFloat64(sumIf(value, measure = h.2))),
                  if(sumIf(value, measure = h.3) = 0, NULL,
                     round(sumIf(value, measure = h.2) / sumIf(value, measure = h.3), 3))),
               {version}, {slot}
        FROM daily_region_measures
        ARRAY JOIN [{items}] AS h
        WHERE {where} AND measure IN ({measures})
        GROUP BY day, h
        SETTINGS {WRITE}
    """


VACANCY_EVENTS = "('vacancy.submitted', 'vacancy.updated', 'vacancy.closed')"
VACANCY_EVENT_TYPES = frozenset(("vacancy.submitted", "vacancy.updated", "vacancy.closed"))
# More vacancies touched than this (a backlog), and their states are refreshed by their events' days instead.
MAX_LISTED_VACANCIES = 5_000
_VACANCY_ID = re.compile(r"V[0-9a-f]{16}")


def _vacancy_literal(vacancy_id: str) -> str:
    # Validated ids (schemas.events) only: a literal in the statement needs no quoting beyond this.
    if not _VACANCY_ID.fullmatch(vacancy_id):
        raise ValueError(f"not a vacancy id: {vacancy_id!r}")
    return f"'{vacancy_id}'"


def _vacancy_facts_sql(only: str = "") -> str:
    """SQL: the vacancies ``only`` selects ('' for all), folded from their lifecycle: cells, posting day,
    closing day (exclusive: the day it was closed, or the day after its deadline), openings, and ``posted``
    -- its first submission was posted by the review."""
    return f"""
        SELECT vacancy_id, region, industry, occupation, size_band, posted_day, close_day, openings,
               closed_at, submitted_at, close_reason, filled,
               submitted_at IS NOT NULL AND submission IN (SELECT event_id FROM vacancy_reviews FINAL
                                                           WHERE decision = 'posted'{f" AND {only}" if only else ""})
                   AS posted
        FROM (
            SELECT vacancy_id, max(region) AS region, max(industry) AS industry, max(occupation) AS occupation,
                   max(size_band) AS size_band, min(submitted_at) AS submitted_at, min(closed_at) AS closed_at,
                   argMinIfMerge(submission_s) AS submission, argMaxIfMerge(openings_s) AS openings,
                   argMaxIfMerge(deadline_s) AS deadline, argMinIfMerge(close_reason_s) AS close_reason,
                   argMinIfMerge(filled_s) AS filled,
                   toDate(submitted_at, 'Asia/Seoul') AS posted_day,
                   least(if(closed_at IS NULL, {FAR}, toDate(closed_at, 'Asia/Seoul')),
                         if(deadline IS NULL, {FAR}, assumeNotNull(deadline))) AS close_day
            FROM vacancy_lifecycle
            {f"WHERE {only}" if only else ""}
            GROUP BY vacancy_id
        )
    """


def open_vacancies_sql() -> str:
    """SQL: every posted vacancy with its posting day, closing day (exclusive) and openings."""
    return f"SELECT * EXCEPT (posted) FROM ({_vacancy_facts_sql()}) WHERE posted"


def vacancy_states_sql(only: str, version: str) -> str:
    """SQL: insert the current state of the vacancies ``only`` selects into ``vacancy_states``."""
    return f"""
        INSERT INTO vacancy_states (vacancy_id, region, industry, occupation, size_band, posted_day, close_day,
                                    openings, posted, version)
        SELECT vacancy_id, region, industry, occupation, size_band, posted_day, close_day, openings, posted, {version}
        FROM ({_vacancy_facts_sql(only)})
        SETTINGS {WRITE}
    """
