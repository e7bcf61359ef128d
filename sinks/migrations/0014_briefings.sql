-- Daily briefings (briefing/): one row per Asia/Seoul day as rendered at its 08:00 (event time) and kept as
-- sent -- the e-mail (MIME), the standalone page, and the figures it stated (what the next briefing's
-- revisions compare with). Written once per day: a re-run after a crash finds it and writes nothing.
CREATE TABLE IF NOT EXISTS briefings
(
    day         Date,
    lang        LowCardinality(String),
    subject     String,
    recipients  String,
    message     String CODEC(ZSTD(3)),
    page        String CODEC(ZSTD(3)),
    text        String CODEC(ZSTD(3)),
    figures     String CODEC(ZSTD(3)),
    instant     DateTime64(3, 'UTC'),
    as_of       DateTime64(3, 'UTC'),
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY day;

-- Each attempt to send a day's briefing: `sending` before the SMTP transaction, `sent` once the server
-- accepted it, `failed` with the server's words. A day with `sent` is never sent again.
CREATE TABLE IF NOT EXISTS briefing_deliveries
(
    day     Date,
    state   LowCardinality(String),
    attempt UInt32,
    at      DateTime64(3, 'UTC'),
    error   String
)
ENGINE = MergeTree
ORDER BY (day, at);
