-- What readers (the board, Grafana, the API) query: only the newest complete rollup of each day.
CREATE VIEW IF NOT EXISTS measures_daily AS
SELECT day, measure, region, industry, occupation, age_band, sex, size_band, value
FROM daily_measures
WHERE (day, version) IN (SELECT day, max(version) FROM rollup_log GROUP BY day);

CREATE VIEW IF NOT EXISTS measures_hourly AS
SELECT hour, toDate(hour, 'Asia/Seoul') AS day, measure, region, industry, occupation, age_band, sex, size_band, value
FROM hourly_measures
WHERE (toDate(hour, 'Asia/Seoul'), version) IN (SELECT day, max(version) FROM rollup_log GROUP BY day);

-- National and regional totals per day, for fast trend panels over long ranges.
CREATE TABLE IF NOT EXISTS daily_region_measures
(
    day     Date,
    measure LowCardinality(String),
    region  LowCardinality(String),
    value   Int64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (measure, day, region);

CREATE VIEW IF NOT EXISTS measures_by_region AS
SELECT day, measure, region, value
FROM daily_region_measures
WHERE (day, version) IN (SELECT day, max(version) FROM rollup_log GROUP BY day);
