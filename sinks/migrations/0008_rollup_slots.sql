-- Two slots per cell, so that a merge never replaces the rows readers use.
-- Readers take the rows of each day's newest *recorded* rollup version, and the tables are
-- ReplacingMergeTree keyed by the cell: a background merge kept only the newest row of a cell, so a merge
-- that ran while a rollup was writing (before it recorded its version in rollup_log) removed the recorded
-- rows, and readers saw a day short -- zeros in the region totals, 17 of 12,773 stock rows -- until the
-- rollup finished (measured: 36 of 1,760 reads during 60 s of rollups of unchanged events on the bench's
-- store). Now a rollup writes each day into the slot its recorded version does not use (rollup_log.slot):
-- a merge replaces a row only by a newer row of the same slot, which is written only after a newer version
-- of the day was recorded in the other one. Rows of both slots stay (at most two versions of a cell).
ALTER TABLE daily_measures ADD COLUMN IF NOT EXISTS slot UInt8,
    MODIFY ORDER BY (measure, day, region, industry, occupation, age_band, sex, size_band, slot);
ALTER TABLE hourly_measures ADD COLUMN IF NOT EXISTS slot UInt8,
    MODIFY ORDER BY (measure, hour, region, industry, occupation, age_band, sex, size_band, slot);
ALTER TABLE daily_region_measures ADD COLUMN IF NOT EXISTS slot UInt8, MODIFY ORDER BY (measure, day, region, slot);
ALTER TABLE daily_dimension_measures ADD COLUMN IF NOT EXISTS slot UInt8,
    MODIFY ORDER BY (dimension, region, filter, measure, day, code, slot);
ALTER TABLE daily_headline ADD COLUMN IF NOT EXISTS slot UInt8, MODIFY ORDER BY (day, indicator, slot);
ALTER TABLE rollup_log ADD COLUMN IF NOT EXISTS slot UInt8;
