-- Validated events (`message`: the event exactly as received), one row per Kafka offset (ReplacingMergeTree on the offset: a replay after a crash
-- rewrites the same row). A source's re-sent duplicate is another offset with the same event_id: it is kept
-- here for audit and counted once everywhere (LIMIT 1 BY event_id). Times are UTC; `day` and `hour` are
-- the Asia/Seoul bucket of occurred_at (Korea keeps no daylight saving time, so hours align with UTC).
CREATE TABLE IF NOT EXISTS events
(
    event_id       FixedString(32),
    event_type     LowCardinality(String),
    schema_version UInt16,
    occurred_at    DateTime64(3, 'UTC'),
    day            Date MATERIALIZED toDate(occurred_at, 'Asia/Seoul'),
    hour           DateTime('UTC') MATERIALIZED toStartOfHour(occurred_at),
    source         LowCardinality(String),
    entity_id      String,
    vacancy_id     String,
    employer_id    String,
    region         LowCardinality(String),
    industry       LowCardinality(String),
    occupation     LowCardinality(String),
    size_band      LowCardinality(String),
    age_band       LowCardinality(String),
    sex            LowCardinality(String),
    subtype        LowCardinality(String),
    review_rule    LowCardinality(String),
    title_key      String,
    openings       UInt16,
    deadline       Nullable(Date),
    message        String CODEC(ZSTD(3)),
    topic          LowCardinality(String),
    partition      UInt16,
    offset         UInt64,
    emitted_at     DateTime64(3, 'UTC'),
    stored_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, event_type, topic, partition, offset);

-- Messages that failed validation or arrived too late, with the reason and where they came from
-- (personal data masked). One row per offset.
CREATE TABLE IF NOT EXISTS dead_letters
(
    topic       LowCardinality(String),
    partition   UInt16,
    offset      UInt64,
    reason      LowCardinality(String),
    field       String,
    value       String,
    rule        String,
    event_id    String,
    occurred_at Nullable(DateTime64(3, 'UTC')),
    raw         String CODEC(ZSTD(3)),
    emitted_at  DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
