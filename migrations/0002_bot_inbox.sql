-- The bot's side of durability (bot/inbox.py). Every Telegram update is written here *before* the next
-- getUpdates call confirms it to Telegram; a row stays 'new' until its handler has finished, so updates
-- that a crash interrupted are replayed on start-up. Handlers are idempotent per update_id (a photo's job
-- has dedup_key 'tg:<update_id>').
CREATE TABLE inbox (
    update_id   INTEGER PRIMARY KEY,               -- Telegram's update_id
    user_id     INTEGER,                           -- whose update (handlers of one user run in order)
    payload     TEXT    NOT NULL,                  -- the update as Telegram sent it (JSON)
    state       TEXT    NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,        -- handler runs started (a crash loop ends in 'failed')
    next_try_at REAL    NOT NULL DEFAULT 0,
    received_at REAL    NOT NULL,
    handled_at  REAL
);
CREATE INDEX inbox_pending ON inbox (state, update_id);

-- Deliveries are created when a photo's job is recorded; the delivery loop scans the pending ones.
ALTER TABLE deliveries ADD COLUMN reply_to INTEGER;  -- the user's photo message the album answers
CREATE INDEX deliveries_pending ON deliveries (state, next_try_at);
