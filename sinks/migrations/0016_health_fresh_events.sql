-- How many events became visible during a health tick: its freshness quantiles describe those events, and a
-- tick in which none did (events read, no rollup finished) has none -- not a freshness of 0 s.
ALTER TABLE pipeline_health ADD COLUMN IF NOT EXISTS fresh_events UInt64 DEFAULT 0;
