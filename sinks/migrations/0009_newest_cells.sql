-- Readers take the newest row of each measure cell among the versions up to its day's newest recorded
-- rollup (sinks.rollups.newest_rows): a live rollup rewrites only the cells that changed, and a cell it no
-- longer counts gets a 0 (left out here). Before, a rollup rewrote whole days and readers took the rows of
-- the day's newest recorded version.
-- A store from before held each day's cells as the rows of its newest recorded version; a cell that version
-- no longer had (a posting turned duplicate) was simply absent. Only those rows are kept, so that no older
-- row of such a cell becomes its newest.
DELETE FROM daily_measures
WHERE (day, version) NOT IN (SELECT day, max(version) FROM rollup_log GROUP BY day);
DELETE FROM hourly_measures
WHERE (toDate(hour, 'Asia/Seoul'), version) NOT IN (SELECT day, max(version) FROM rollup_log GROUP BY day);

CREATE OR REPLACE VIEW measures_daily AS
SELECT day, measure, region, industry, occupation, age_band, sex, size_band, argMax(value, version) AS value
FROM daily_measures
INNER JOIN (SELECT day AS recorded_day, max(version) AS recorded FROM rollup_log GROUP BY day) AS r
    ON r.recorded_day = day
WHERE version <= recorded
GROUP BY day, measure, region, industry, occupation, age_band, sex, size_band
HAVING value != 0;

CREATE OR REPLACE VIEW measures_hourly AS
SELECT hour, toDate(hour, 'Asia/Seoul') AS day, measure, region, industry, occupation, age_band, sex, size_band,
       argMax(value, version) AS value
FROM hourly_measures
INNER JOIN (SELECT day AS recorded_day, max(version) AS recorded FROM rollup_log GROUP BY day) AS r
    ON r.recorded_day = toDate(hour, 'Asia/Seoul')
WHERE version <= recorded
GROUP BY hour, measure, region, industry, occupation, age_band, sex, size_band
HAVING value != 0;

-- What a rollup changed in a cell (its value less the cell's newest value before): the board's products of
-- a live rollup are the day's recorded products plus the changes of the cells it rewrote.
ALTER TABLE daily_measures ADD COLUMN IF NOT EXISTS delta Int64 DEFAULT 0;
