-- Alerts (alerts/): one row per episode of a condition -- its fingerprint and the event time it was first
-- seen -- rewritten at each judgement while it fires and once more when it resolves (the newest version,
-- the judging instant in ms, wins). `inhibited_by`: the data fault that explains it away (not delivered).
CREATE TABLE IF NOT EXISTS alerts
(
    fingerprint  String,
    starts_at    DateTime64(3, 'UTC'),
    state        LowCardinality(String),
    ends_at      Nullable(DateTime64(3, 'UTC')),
    name         LowCardinality(String),
    class        LowCardinality(String),
    severity     LowCardinality(String),
    measure      LowCardinality(String),
    region       LowCardinality(String),
    industry     LowCardinality(String),
    source       LowCardinality(String),
    family       LowCardinality(String),
    employer_id  String,
    size_band    LowCardinality(String),
    day          Date,
    observed     Nullable(Float64),
    expected     Nullable(Float64),
    lower        Nullable(Float64),
    upper        Nullable(Float64),
    direction    LowCardinality(String),
    summary_ko   String,
    summary_en   String,
    labels       String,
    annotations  String,
    inhibited_by String,
    job          LowCardinality(String),
    instant      DateTime64(3, 'UTC'),
    version      UInt64,
    recorded_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (fingerprint, starts_at);

-- The outbox's memory: each episode's state as delivered to Alertmanager (and when), so that a restart
-- re-sends only what was not delivered; firing alerts are re-sent now and then, as Prometheus does.
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    fingerprint  String,
    starts_at    DateTime64(3, 'UTC'),
    state        LowCardinality(String),
    delivered_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(delivered_at)
ORDER BY (fingerprint, starts_at, state);
