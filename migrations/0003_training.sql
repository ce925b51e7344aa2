-- Selfie intake for /train (bot/training.py). A session lives from /train until its training job is over;
-- it survives restarts. `selfies` holds the accepted 512×512 crops (DATA_DIR/selfies/<user id>/) and the
-- fingerprint of each *original* photo, on which duplicates are detected (crops of one photo drift).
CREATE TABLE training_sessions (
    user_id          INTEGER PRIMARY KEY,
    chat_id          INTEGER NOT NULL,
    class            TEXT,                          -- man, woman, boy, girl, person, dog, cat; NULL: not chosen yet
    state            TEXT    NOT NULL DEFAULT 'collecting' CHECK (state IN ('collecting', 'training')),
    job_id           INTEGER,                       -- the train job, once started
    progress_message INTEGER,                       -- the message the bot edits with the job's progress
    started_at       REAL    NOT NULL,              -- /train
    training_at      REAL                           -- /done (or the 20th photo)
);

CREATE TABLE selfies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    update_id   INTEGER UNIQUE,                     -- the Telegram update it came in (a replay adds nothing)
    path        TEXT    NOT NULL,                   -- the crop, relative to DATA_DIR
    fingerprint TEXT    NOT NULL,                   -- dHash of the original photo, 16 hex digits
    created_at  REAL    NOT NULL
);
CREATE INDEX selfies_user ON selfies (user_id, id);

-- The user's personal model once a training succeeded (retraining replaces it).
ALTER TABLE users ADD COLUMN lora TEXT;             -- relative to DATA_DIR
ALTER TABLE users ADD COLUMN lora_class TEXT;
ALTER TABLE users ADD COLUMN lora_token TEXT;
