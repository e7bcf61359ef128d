-- The matching observatory, written by the worker's matcher (progressive validation, exposure).

-- Per Asia/Seoul day, ranker (model, rule, random) and seeker group (all; age_band, sex or region and its
-- value): outcomes scored, ranking queries (good outcomes), hits in the top 10, precision@10, NDCG@10, AUC.
CREATE TABLE IF NOT EXISTS matching_daily
(
    day             Date,
    ranker          LowCardinality(String),
    group_kind      LowCardinality(String),
    group_value     LowCardinality(String),
    queries         UInt64,
    hits_at_10      UInt64,
    precision_at_10 Float64,
    ndcg_at_10      Float64,
    outcomes        UInt64,
    auc             Float64,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, ranker, group_kind, group_value);

-- Per day: recommendations served, distinct vacancies shown, the largest share one vacancy took, the Gini
-- coefficient of exposure over the vacancies shown, hires, and hires at a vacancy recommended to the seeker
-- within the previous 30 days.
CREATE TABLE IF NOT EXISTS matching_exposure
(
    day              Date,
    recommendations  UInt64,
    vacancies_shown  UInt64,
    max_share        Float64,
    gini             Float64,
    hires            UInt64,
    hires_attributed UInt64,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY day;
