-- When each episode was first judged (event time): what a report as of an instant may know of it -- its
-- `starts_at` can be earlier (a layoff's window began days before it was seen).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS first_instant DateTime64(3, 'UTC') DEFAULT instant;
