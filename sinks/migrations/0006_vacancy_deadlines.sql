-- Every deadline a vacancy was given (its submission's and its updates'), ordered by deadline. A vacancy is
-- open only before its newest deadline (the review rejects a submission without one), so the stock rollup
-- reads the vacancies with a deadline after the first day it rebuilds -- about the open stock -- instead of
-- every vacancy ever posted (1.6 million a year at national scale).
CREATE TABLE IF NOT EXISTS vacancy_deadlines
(
    deadline   Date,
    vacancy_id String
)
ENGINE = ReplacingMergeTree
ORDER BY (deadline, vacancy_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS vacancy_deadlines_mv TO vacancy_deadlines AS
SELECT assumeNotNull(deadline) AS deadline, vacancy_id
FROM events
WHERE event_type IN ('vacancy.submitted', 'vacancy.updated') AND deadline IS NOT NULL;

-- The events stored before this migration (run again after an interruption, it only adds duplicates, which
-- the table folds and the rollup reads as a set).
INSERT INTO vacancy_deadlines
SELECT assumeNotNull(deadline), vacancy_id
FROM events
WHERE event_type IN ('vacancy.submitted', 'vacancy.updated') AND deadline IS NOT NULL;
