-- The insured stock (피보험자 수) as the employment-insurance database last counted it: a snapshot per region
-- and industry at the end of a day. The daily stock is the latest snapshot plus the acquisitions and losses
-- the feed has carried since; a snapshot loaded again (same day, region, industry) replaces the old one.
CREATE TABLE IF NOT EXISTS insured_stock_base
(
    as_of     Date,
    region    LowCardinality(String),
    industry  LowCardinality(String),
    insured   UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (as_of, region, industry);
