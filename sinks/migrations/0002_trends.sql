-- The vacancy review decision of each submission (posted, or rejected by reason), recomputed by the
-- rollup for the days it touches; the newest version wins.
CREATE TABLE IF NOT EXISTS vacancy_reviews
(
    day        Date,
    event_id   FixedString(32),
    vacancy_id String,
    decision   LowCardinality(String),
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, event_id);

-- Each vacancy's life, folded from its events by order-insensitive, idempotent aggregates (min, argMin,
-- argMax), so that replays and duplicates leave it unchanged.
CREATE TABLE IF NOT EXISTS vacancy_lifecycle
(
    vacancy_id      String,
    region          SimpleAggregateFunction(max, LowCardinality(String)),
    industry        SimpleAggregateFunction(max, LowCardinality(String)),
    occupation      SimpleAggregateFunction(max, LowCardinality(String)),
    size_band       SimpleAggregateFunction(max, LowCardinality(String)),
    submitted_at    SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    closed_at       SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    submission_s    AggregateFunction(argMinIf, FixedString(32), DateTime64(3, 'UTC'), UInt8),
    openings_s      AggregateFunction(argMaxIf, UInt16, DateTime64(3, 'UTC'), UInt8),
    deadline_s      AggregateFunction(argMaxIf, Nullable(Date), DateTime64(3, 'UTC'), UInt8),
    close_reason_s  AggregateFunction(argMinIf, LowCardinality(String), DateTime64(3, 'UTC'), UInt8),
    filled_s        AggregateFunction(argMinIf, UInt16, DateTime64(3, 'UTC'), UInt8)
)
ENGINE = AggregatingMergeTree
ORDER BY vacancy_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS vacancy_lifecycle_mv TO vacancy_lifecycle AS
SELECT
    vacancy_id,
    max(region) AS region,
    max(industry) AS industry,
    max(occupation) AS occupation,
    max(size_band) AS size_band,
    minIfOrNull(occurred_at, event_type = 'vacancy.submitted') AS submitted_at,
    minIfOrNull(occurred_at, event_type = 'vacancy.closed') AS closed_at,
    argMinIfState(event_id, occurred_at, event_type = 'vacancy.submitted') AS submission_s,
    argMaxIfState(openings, occurred_at, event_type IN ('vacancy.submitted', 'vacancy.updated') AND openings > 0)
        AS openings_s,
    argMaxIfState(deadline, occurred_at, event_type IN ('vacancy.submitted', 'vacancy.updated')
                                         AND deadline IS NOT NULL) AS deadline_s,
    argMinIfState(subtype, occurred_at, event_type = 'vacancy.closed') AS close_reason_s,
    argMinIfState(openings, occurred_at, event_type = 'vacancy.closed') AS filled_s
FROM events
WHERE event_type IN ('vacancy.submitted', 'vacancy.updated', 'vacancy.closed')
GROUP BY vacancy_id;

-- Exact measures per Asia/Seoul day and per hour, by region, industry, occupation and, where the event
-- carries them, age band, sex and establishment size. Rebuilt per bucket by the rollup (newest version wins).
CREATE TABLE IF NOT EXISTS daily_measures
(
    day        Date,
    measure    LowCardinality(String),
    region     LowCardinality(String),
    industry   LowCardinality(String),
    occupation LowCardinality(String),
    age_band   LowCardinality(String),
    sex        LowCardinality(String),
    size_band  LowCardinality(String),
    value      Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (measure, day, region, industry, occupation, age_band, sex, size_band);

CREATE TABLE IF NOT EXISTS hourly_measures
(
    hour       DateTime('UTC'),
    measure    LowCardinality(String),
    region     LowCardinality(String),
    industry   LowCardinality(String),
    occupation LowCardinality(String),
    age_band   LowCardinality(String),
    sex        LowCardinality(String),
    size_band  LowCardinality(String),
    value      Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (measure, hour, region, industry, occupation, age_band, sex, size_band);

-- Which buckets are complete up to which version: readers use only complete rollups.
CREATE TABLE IF NOT EXISTS rollup_log
(
    day       Date,
    version   UInt64,
    done_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY day;

-- Pipeline health, written by the worker every few seconds.
CREATE TABLE IF NOT EXISTS pipeline_health
(
    ts                DateTime64(3, 'UTC'),
    topic             LowCardinality(String),
    lag               Int64,
    events            UInt64,
    events_per_s      Float64,
    dead_letters      UInt64,
    too_late          UInt64,
    freshness_p50_s   Float64,
    freshness_p99_s   Float64
)
ENGINE = MergeTree
ORDER BY (topic, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;
