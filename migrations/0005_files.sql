-- Files kept in the database (jobs/files.py, FILE_STORE=database): uploads, selfies, results and LoRAs
-- reach workers on other hosts through the one service they all reach. `path` is the file's path
-- relative to DATA_DIR, as in job payloads and results.
CREATE TABLE files (
    path       TEXT PRIMARY KEY,
    data       BLOB    NOT NULL,
    created_at REAL    NOT NULL
);
