-- A rollup while catching up on a backlog rebuilds the days the event-time clock has passed and leaves the
-- day being read (and any after it) dirty for a later one (sinks.rollups: ``before``). Such a rollup is
-- recorded `partial`: events it left were stored before it began, so start-up looks for days to redo from
-- the last rollup that left nothing dirty.
ALTER TABLE rollup_log ADD COLUMN IF NOT EXISTS partial UInt8 DEFAULT 0;
