-- /pose waiting for its reference photo (bot/handlers/pose.py). A row from `/pose [scene]` until the
-- reference arrives, `/pose cancel`, or it goes stale (the bot ignores rows older than POSE_WAIT_S); it
-- survives restarts, so a photo sent while the bot was down is still taken as the reference.
CREATE TABLE pose_waits (
    user_id    INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    scene      TEXT,                                -- what the user typed after /pose (NULL: none)
    created_at REAL    NOT NULL
);
