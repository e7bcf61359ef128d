-- Jobs on an event-time schedule (streams.schedule): each job's instants, armed when the job is first
-- seen and done once its effect is written. The newest row per (job, instant) wins (done over armed).
CREATE TABLE IF NOT EXISTS scheduled_runs
(
    job         LowCardinality(String),
    instant     DateTime64(3, 'UTC'),
    done        UInt8,
    clock       Nullable(DateTime64(3, 'UTC')),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(done)
ORDER BY (job, instant);

-- Each day's national and regional figures as they were published: `first` when the day ended (in event
-- time), `final` once the allowed lateness has passed and late events can no longer change them. Against
-- the current figures they explain every revision. `as_of`: the event time the aggregates held when they
-- were taken (live, seconds after `instant`; in a replay at full speed, as far as its rollup got). A plain
-- MergeTree: a job's insert carries a deduplication token of the job and its instant, so a run repeated
-- after a crash adds nothing.
CREATE TABLE IF NOT EXISTS published_measures
(
    day       Date,
    stage     LowCardinality(String),
    measure   LowCardinality(String),
    region    LowCardinality(String),
    value     Int64,
    version   UInt64,
    instant   DateTime64(3, 'UTC'),
    as_of     DateTime64(3, 'UTC'),
    taken_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (day, stage, measure, region)
SETTINGS non_replicated_deduplication_window = 1000;

-- The event time the aggregates held at each health tick: "data through" on the boards.
ALTER TABLE pipeline_health ADD COLUMN IF NOT EXISTS event_time Nullable(DateTime64(3, 'UTC'));
