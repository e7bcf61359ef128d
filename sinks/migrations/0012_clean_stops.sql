-- A worker that stops with every stored event rolled up records the instant, on the engine's clock (the
-- clock of events.stored_at). A start-up after it looks for days to redo only among the events stored from
-- then on (sinks.rollups: ``dirty_since_last_rollup``). Without it, a start-up rebuilt every day stored in
-- the 5 s before the last whole rollup began: after a fast drain, the whole bench backlog (33 days, ~6 s,
-- the worker's memory ~1 GB; docs/benchmarks.md, stop 24).
CREATE TABLE IF NOT EXISTS clean_stops
(
    stopped_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY stopped_at;
