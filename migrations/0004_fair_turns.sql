-- Users take turns within a priority (issue 12, jobs/sql.py: ENQUEUE): the claim orders by
-- priority, then turn, then age. Existing rows get turn 0: first come, first served among themselves.
ALTER TABLE jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_fair ON jobs (state, priority DESC, turn, id);
