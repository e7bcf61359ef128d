-- Raw validated events, for drill-down. Times are stored in UTC; `day` is the Asia/Seoul day of
-- occurred_at, the bucket every aggregate uses. ReplacingMergeTree on event_id: a re-sent event
-- collapses to one row (counting never relies on that: aggregates are deduplicated upstream).
CREATE TABLE IF NOT EXISTS events
(
    event_id       FixedString(32),
    event_type     LowCardinality(String),
    schema_version UInt16,
    occurred_at    DateTime64(3, 'UTC'),
    day            Date MATERIALIZED toDate(occurred_at, 'Asia/Seoul'),
    source         LowCardinality(String),
    entity_id      String,
    region         LowCardinality(String),
    industry       LowCardinality(String),
    occupation     LowCardinality(String),
    size_band      LowCardinality(String),
    age_band       LowCardinality(String),
    sex            LowCardinality(String),
    payload        String CODEC(ZSTD(3)),
    topic          LowCardinality(String),
    partition      UInt16,
    offset         UInt64,
    stored_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (event_type, day, region, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Messages that failed validation, with the reason and where they came from (personal data masked).
CREATE TABLE IF NOT EXISTS dead_letters
(
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    topic       LowCardinality(String),
    partition   UInt16,
    offset      UInt64,
    reason      LowCardinality(String),
    field       String,
    value       String,
    rule        String,
    raw         String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000;
