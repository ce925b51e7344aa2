-- The shared contract between the bot and the inference workers (DESIGN.md: "the jobs table is the only
-- contract between them"). Times are Unix seconds (REAL).

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,          -- Telegram user id
    chat_id     INTEGER,
    lang        TEXT    NOT NULL DEFAULT 'en', -- 'ru' | 'en'
    lang_fixed  INTEGER NOT NULL DEFAULT 0,    -- 1 once the user chose with /lang
    style       TEXT,                          -- NULL: the four artists; else one style id
    created_at  REAL    NOT NULL
);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,                 -- 'stylize' | 'train' | 'portrait' | ...
    state         TEXT    NOT NULL DEFAULT 'queued' -- queued | running | done | failed | cancelled
                  CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    priority      INTEGER NOT NULL DEFAULT 0,       -- higher first; interactive jobs outrank training
    user_id       INTEGER,
    chat_id       INTEGER,
    payload       TEXT    NOT NULL DEFAULT '{}',    -- JSON: what to do
    result        TEXT,                             -- JSON: what was made (paths under DATA_DIR)
    error_code    TEXT,                             -- stable code, see inference/errors.py
    error_message TEXT,
    progress      REAL    NOT NULL DEFAULT 0,       -- 0..1
    progress_text TEXT,
    eta_s         REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,       -- claims so far
    max_attempts  INTEGER NOT NULL DEFAULT 3,
    worker        TEXT,
    lease_until   REAL,
    dedup_key     TEXT UNIQUE,                      -- e.g. 'tg:<update_id>': one job per Telegram update
    created_at    REAL    NOT NULL,
    started_at    REAL,
    finished_at   REAL
);
CREATE INDEX jobs_queue ON jobs (state, priority DESC, id);
CREATE INDEX jobs_user ON jobs (user_id, state);

-- One row per finished job the bot must answer; the bot marks it sent after Telegram confirms.
CREATE TABLE deliveries (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'gave_up')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL    NOT NULL DEFAULT 0,
    message_ids TEXT,                               -- JSON list of sent message ids
    updated_at  REAL
);
