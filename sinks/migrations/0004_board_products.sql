-- Rollup products the board reads, so that every panel stays fast over a national year.

-- Counts per day × region × one breakdown dimension (industry or occupation), and national (region ''):
-- a breakdown panel reads one region's (or the nation's) rows here instead of every cell of daily_measures.
CREATE TABLE IF NOT EXISTS daily_dimension_measures
(
    day       Date,
    measure   LowCardinality(String),
    dimension LowCardinality(String),
    region    LowCardinality(String),
    code      LowCardinality(String),
    value     Int64,
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dimension, region, measure, day, code);

-- The headline indicators of each day, national: counts and the two 구인배수 ratios (unsuppressed; the
-- panel suppresses small counts of persons when it publishes them).
CREATE TABLE IF NOT EXISTS daily_headline
(
    day       Date,
    indicator LowCardinality(String),
    value     Nullable(Float64),
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, indicator);
