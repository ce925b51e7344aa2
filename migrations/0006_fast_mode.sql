-- Fast mode (issue 10): the user's choice of schedule, remembered across restarts.
ALTER TABLE users ADD COLUMN fast INTEGER NOT NULL DEFAULT 0;  -- 1: the few-step schedule always
