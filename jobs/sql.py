"""The queue's statements, shared by the sync (worker) and async (bot) APIs so they cannot drift."""

# secure_delete: a deleted row (/forget) is overwritten in the file, whatever the SQLite build's default.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
)
# After /forget: the WAL still holds the deleted rows' old pages until a checkpoint copies and truncates it.
CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"
BUSY_TIMEOUT_MS = 30_000

# Users take turns within a priority (issue 12): a job's `turn` is its user's next turn, never behind the
# queue's head (the lowest turn still unfinished), so in a burst every user's first job runs before
# anyone's second, and a user who comes later joins the current round instead of jumping it.
ENQUEUE = """
INSERT INTO jobs (kind, payload, user_id, chat_id, priority, dedup_key, max_attempts, created_at, turn)
VALUES (:kind, :payload, :user_id, :chat_id, :priority, :dedup_key, :max_attempts, :now, (
    SELECT CASE WHEN mine > head THEN mine ELSE head END FROM (
        SELECT COALESCE((SELECT MIN(turn) FROM jobs
                         WHERE state IN ('queued', 'running') AND priority = :priority), 0) AS head,
               COALESCE((SELECT MAX(turn) + 1 FROM jobs
                         WHERE user_id = :user_id AND state IN ('queued', 'running') AND priority = :priority),
                        0) AS mine
    ) AS turns))
ON CONFLICT (dedup_key) DO NOTHING
RETURNING id
"""
BY_DEDUP = "SELECT id FROM jobs WHERE dedup_key = ?"
GET = "SELECT * FROM jobs WHERE id = ?"

# One statement: the row moves to 'running' in the same write that picks it; inside BEGIN IMMEDIATE on
# SQLite, with {lock} = FOR UPDATE SKIP LOCKED on PostgreSQL (jobs/db.py).
CLAIM = """
UPDATE jobs SET state = 'running', worker = :worker, lease_until = :lease_until,
       attempts = attempts + 1, started_at = COALESCE(started_at, :now)
WHERE id = (SELECT id FROM jobs WHERE state = 'queued' {kinds} {min_priority}
            ORDER BY priority DESC, turn, id LIMIT 1 {lock})
RETURNING *
"""
# Up to :limit jobs in one statement (issue 9: the worker batches several users' photos in one UNet run).
# Same order as CLAIM; RETURNING order is not guaranteed, so callers sort by (priority DESC, turn, id).
CLAIM_MANY = """
UPDATE jobs SET state = 'running', worker = :worker, lease_until = :lease_until,
       attempts = attempts + 1, started_at = COALESCE(started_at, :now)
WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' {kinds} {min_priority}
             ORDER BY priority DESC, turn, id LIMIT :limit {lock})
RETURNING *
"""
# A job claimed with others but not run with them (its photo fits another batch): back to the queue as if
# never claimed, so its wait is not counted as running.
UNCLAIM = """
UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, attempts = attempts - 1,
       started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END
WHERE id = :id AND state = 'running' AND worker = :worker
"""

HEARTBEAT = """
UPDATE jobs SET lease_until = :lease_until
WHERE id = :id AND state = 'running' AND worker = :worker
"""
PROGRESS = """
UPDATE jobs SET progress = :progress, progress_text = :text, eta_s = :eta_s, lease_until = :lease_until
WHERE id = :id AND state = 'running' AND worker = :worker
"""
FINISH = """
UPDATE jobs SET state = 'done', result = :result, progress = 1, finished_at = :now, lease_until = NULL
WHERE id = :id AND state = 'running' AND worker = :worker
"""
FAIL = """
UPDATE jobs SET state = 'failed', error_code = :code, error_message = :message, finished_at = :now,
       lease_until = NULL
WHERE id = :id AND state = 'running' AND worker = :worker
"""
# A job given back on shutdown: the attempt does not count, it was not the job's fault.
RELEASE = """
UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, attempts = attempts - 1
WHERE id = :id AND state = 'running' AND worker = :worker
"""
CANCEL = """
UPDATE jobs SET state = 'cancelled', finished_at = :now, lease_until = NULL
WHERE id = :id AND state IN ('queued', 'running') {owner}
"""
CANCEL_USER_QUEUED = """
UPDATE jobs SET state = 'cancelled', finished_at = :now
WHERE user_id = :user_id AND state = 'queued' {kinds}
RETURNING id
"""

REQUEUE_EXPIRED = """
UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL
WHERE state = 'running' AND lease_until < :now AND attempts < max_attempts
RETURNING id
"""
FAIL_EXPIRED = """
UPDATE jobs SET state = 'failed', error_code = 'worker_lost',
       error_message = 'the worker stopped while running this job, too many times', finished_at = :now,
       lease_until = NULL
WHERE state = 'running' AND lease_until < :now AND attempts >= max_attempts
RETURNING id
"""

# How many queued jobs would run before this one (same ordering as CLAIM).
POSITION = """
SELECT COUNT(*) FROM jobs AS other, jobs AS me
WHERE me.id = :id AND other.state = 'queued' AND other.id != me.id
  AND (other.priority > me.priority OR (other.priority = me.priority
       AND (other.turn < me.turn OR (other.turn = me.turn AND other.id < me.id))))
"""
# Running jobs that a queued one waits for: not a running job of lower priority (a training yields to
# interactive jobs between its steps, so a photo does not wait behind it).
COUNT_RUNNING_AHEAD = """
SELECT COUNT(*) FROM jobs AS other, jobs AS me
WHERE me.id = :id AND other.state = 'running' AND other.id != me.id AND other.priority >= me.priority
"""
COUNT_UNFINISHED_USER = "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ('queued', 'running')"
# A training aside: it runs for minutes and must not lock its user out of photos.
COUNT_INTERACTIVE_USER = """
SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ('queued', 'running') AND kind != 'train'
"""
COUNT_QUEUED = "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"
COUNT_RUNNING = "SELECT COUNT(*) FROM jobs WHERE state = 'running'"
HAS_WAITING = "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND priority >= ?)"
USER_JOB_STATES = "SELECT id, state FROM jobs WHERE user_id = ?"
USER_JOBS = """
SELECT * FROM jobs WHERE user_id = ? AND state IN ('queued', 'running') ORDER BY id
"""


def kinds_clause(kinds: tuple[str, ...] | None) -> tuple[str, dict]:
    if not kinds:
        return "", {}
    names = {f"k{i}": k for i, k in enumerate(kinds)}
    return "AND kind IN (" + ", ".join(f":{n}" for n in names) + ")", names


# What the queue holds for a new interactive job to wait behind (jobs/wait.py turns it into seconds):
# unfinished interactive jobs by schedule, the mean run time of the last 20 finished ones of each schedule
# (newest ids first: the primary key, so no scan of the whole history), and the workers running them.
# Parameters: the interactive kinds as :k0, :k1, ... (kinds_clause); {fast}: the dialect's FAST_FLAG.
QUEUE_LOAD = """
SELECT
  (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') {kinds}
     AND NOT {fast}) AS normal_jobs,
  (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') {kinds}
     AND {fast}) AS fast_jobs,
  (SELECT AVG(finished_at - started_at) FROM (SELECT finished_at, started_at FROM jobs
     WHERE state = 'done' {kinds} AND NOT {fast}
     ORDER BY id DESC LIMIT 20) AS recent_normal) AS normal_s,
  (SELECT AVG(finished_at - started_at) FROM (SELECT finished_at, started_at FROM jobs
     WHERE state = 'done' {kinds} AND {fast}
     ORDER BY id DESC LIMIT 20) AS recent_fast) AS fast_s,
  (SELECT COUNT(*) FROM jobs WHERE state = 'running' {kinds}) AS running
"""

# Is the job's payload marked fast? The payload is JSON text; each engine reads a field its own way.
FAST_FLAG = {
    "sqlite": "(COALESCE(json_extract(payload, '$.fast'), 0) != 0)",
    "postgresql": "COALESCE((payload::jsonb ->> 'fast')::boolean, false)",
}
