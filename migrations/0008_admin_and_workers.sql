-- Operating the bot (issue 15): users an admin blocked with /block, and one heartbeat row per worker, through
-- which workers in other processes (or hosts) report to the bot's /metrics that they are up and how much GPU
-- memory they hold.
CREATE TABLE blocked_users (
    user_id     INTEGER PRIMARY KEY,               -- Telegram user id
    blocked_by  INTEGER,                           -- the admin who sent /block
    blocked_at  REAL    NOT NULL,
    notified_at REAL                               -- the last "you are blocked" answer (at most one a day)
);

CREATE TABLE workers (
    name        TEXT    PRIMARY KEY,               -- '<host>/<device>': the same slot across restarts
    pid         INTEGER NOT NULL,
    starts      INTEGER NOT NULL DEFAULT 1,        -- restarts = starts - 1
    started_at  REAL    NOT NULL,
    seen_at     REAL    NOT NULL,                  -- the last heartbeat; stale means the worker is gone
    stopped_at  REAL,                              -- a clean stop; NULL while it runs (or after a kill -9)
    gpu_allocated_bytes INTEGER,                   -- torch's allocator on the worker's device; NULL on CPU
    gpu_reserved_bytes  INTEGER
);
