-- Rollup products the board reads, so that every panel stays fast over a national year.

-- Counts per day × region (and national: region '') × one breakdown dimension, by the other: dimension
-- 'occupation|industry' holds the occupation in `code` (also '' for none) and the industry in `filter`, or
-- '' in `filter` for every industry together; 'industry|occupation' the other way round. Ordered so that
-- any choice of region, industry and occupation on the board reads one contiguous range of a few thousand
-- rows instead of scanning every cell of daily_measures.
CREATE TABLE IF NOT EXISTS daily_dimension_measures
(
    day       Date,
    measure   LowCardinality(String),
    dimension LowCardinality(String),
    region    LowCardinality(String),
    filter    LowCardinality(String),
    code      LowCardinality(String),
    value     Int64,
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dimension, region, filter, measure, day, code);

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
