"""The synchronous queue API, for the worker (and tests). One connection per process or thread.

The same class on SQLite and PostgreSQL: `JobQueue(path_or_url)`; jobs/db.py holds what differs.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from jobs import sql
from jobs.db import Target, connect, target_of
from jobs.models import Job
from jobs.schema import migrate
from jobs.wait import QueueLoad, expected_wait_s, load_statement

DEFAULT_LEASE_S = 60.0
QUEUED, OVER = "queued", "over"  # NOTIFY channels: a job to claim; a job the bot must deliver


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobQueue:
    def __init__(
        self,
        db: str | Path | Target,
        *,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        migrate_schema: bool = True,
    ):
        self.target = target_of(db)
        self.conn = connect(self.target)
        if migrate_schema:  # False for helper connections of a process that already migrated
            migrate(self.conn)
        self.worker_id = worker_id or default_worker_id()
        self.lease_s = lease_s

    def close(self) -> None:
        self.conn.close()

    # -- producer side -------------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        chat_id: int | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        max_attempts: int = 3,
    ) -> int:
        """Queue a job and return its id; with a dedup_key already seen, the existing job's id."""
        params = dict(
            kind=kind,
            payload=json.dumps(payload or {}),
            user_id=user_id,
            chat_id=chat_id,
            priority=priority,
            dedup_key=dedup_key,
            max_attempts=max_attempts,
            now=time.time(),
        )
        row = self.conn.execute(sql.ENQUEUE, params).fetchone()
        if row is not None:
            self.conn.notify(QUEUED)
            return row[0]
        return self.conn.execute(sql.BY_DEDUP, (dedup_key,)).fetchone()[0]

    def get(self, job_id: int) -> Job | None:
        row = self.conn.execute(sql.GET, (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def cancel(self, job_id: int, *, user_id: int | None = None) -> bool:
        owner = "AND user_id = :user_id" if user_id is not None else ""
        cur = self.conn.execute(
            sql.CANCEL.format(owner=owner), dict(id=job_id, user_id=user_id, now=time.time())
        )
        return cur.rowcount == 1

    # -- worker side ---------------------------------------------------------------------------
    def claim(self, kinds: tuple[str, ...] | None = None, *, min_priority: int | None = None) -> Job | None:
        """Take the next queued job (highest priority, then the user's turn, then oldest), or None."""
        rows = self._claim(sql.CLAIM, kinds, min_priority, {})
        return Job.from_row(rows[0]) if rows else None

    def claim_many(
        self, limit: int, kinds: tuple[str, ...] | None = None, *, min_priority: int | None = None
    ) -> list[Job]:
        """Take up to `limit` queued jobs in one statement, in claim order (the worker batches them)."""
        rows = self._claim(sql.CLAIM_MANY, kinds, min_priority, {"limit": max(1, int(limit))})
        jobs = [Job.from_row(row) for row in rows]
        return sorted(jobs, key=lambda job: (-job.priority, job.turn, job.id))

    def _claim(self, statement: str, kinds, min_priority: int | None, extra: dict) -> list:
        kinds_sql, kinds_params = sql.kinds_clause(kinds)
        prio_sql = "AND priority >= :min_priority" if min_priority is not None else ""
        statement = statement.format(kinds=kinds_sql, min_priority=prio_sql, lock=self.conn.claim_lock)
        now = time.time()
        params = dict(
            worker=self.worker_id,
            lease_until=now + self.lease_s,
            now=now,
            min_priority=min_priority,
            **kinds_params,
            **extra,
        )
        with self.conn.one_write():
            return self.conn.execute(statement, params).fetchall()

    def heartbeat(self, job_id: int) -> bool:
        """Renew the lease. False means the job is no longer ours (cancelled, or expired and re-claimed)."""
        params = dict(id=job_id, worker=self.worker_id, lease_until=time.time() + self.lease_s)
        return self.conn.execute(sql.HEARTBEAT, params).rowcount == 1

    def progress(
        self, job_id: int, fraction: float, text: str | None = None, eta_s: float | None = None
    ) -> bool:
        """Record progress (and renew the lease). False means stop: the job is no longer ours."""
        params = dict(
            id=job_id,
            worker=self.worker_id,
            progress=max(0.0, min(1.0, fraction)),
            text=text,
            eta_s=eta_s,
            lease_until=time.time() + self.lease_s,
        )
        return self.conn.execute(sql.PROGRESS, params).rowcount == 1

    def finish(self, job_id: int, result: dict[str, Any]) -> bool:
        params = dict(id=job_id, worker=self.worker_id, result=json.dumps(result), now=time.time())
        return self._over(self.conn.execute(sql.FINISH, params).rowcount == 1)

    def fail(self, job_id: int, code: str, message: str) -> bool:
        params = dict(id=job_id, worker=self.worker_id, code=code, message=message[:2000], now=time.time())
        return self._over(self.conn.execute(sql.FAIL, params).rowcount == 1)

    def _over(self, changed: bool) -> bool:
        """Wake the bot's delivery loop (PostgreSQL; on SQLite it polls)."""
        if changed:
            self.conn.notify(OVER)
        return changed

    def release(self, job_id: int) -> bool:
        return self.conn.execute(sql.RELEASE, dict(id=job_id, worker=self.worker_id)).rowcount == 1

    def unclaim(self, job_id: int) -> bool:
        """Give back a job claimed by claim_many but not run: queued again, as if never claimed."""
        return self.conn.execute(sql.UNCLAIM, dict(id=job_id, worker=self.worker_id)).rowcount == 1

    def requeue_expired(self) -> tuple[list[int], list[int]]:
        """Jobs whose worker vanished: back to the queue, or failed once their attempts are spent."""
        now = time.time()
        with self.conn.transaction():
            failed = [r[0] for r in self.conn.execute(sql.FAIL_EXPIRED, dict(now=now)).fetchall()]
            requeued = [r[0] for r in self.conn.execute(sql.REQUEUE_EXPIRED, dict(now=now)).fetchall()]
        if requeued:
            self.conn.notify(QUEUED)
        self._over(bool(failed))
        return requeued, failed

    def has_waiting(self, min_priority: int) -> bool:
        """Is an interactive job waiting? (The trainer asks between optimizer steps.)"""
        return bool(self.conn.execute(sql.HAS_WAITING, (min_priority,)).fetchone()[0])

    def position(self, job_id: int) -> int:
        return self.conn.execute(sql.POSITION, dict(id=job_id)).fetchone()[0]

    def expected_wait_s(self) -> float:
        """How long a new interactive job would wait (jobs/wait.py)."""
        statement, params = load_statement(self.conn.dialect)
        return expected_wait_s(QueueLoad.from_row(self.conn.execute(statement, params).fetchone()))
