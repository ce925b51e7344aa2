"""The asynchronous queue API, for the bot: aiosqlite (the event loop never waits on the disk) or psycopg's
AsyncConnection on PostgreSQL, both used through the same `await (await db.execute(q, p)).fetchone()`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite

from jobs import sql
from jobs.db import AsyncPostgres, Target, connect, target_of
from jobs.models import Job, JobState
from jobs.queue import QUEUED
from jobs.schema import migrate
from jobs.wait import QueueLoad, expected_wait_s, load_statement

AsyncDb = aiosqlite.Connection | AsyncPostgres


async def fetch_one(db: AsyncDb, statement: str, params: Any = ()) -> Any:
    """The first row of one statement (None if none), on either engine; every store reads through these."""
    return await (await db.execute(statement, params)).fetchone()


async def fetch_all(db: AsyncDb, statement: str, params: Any = ()) -> list[Any]:
    """Every row of one statement, on either engine."""
    return list(await (await db.execute(statement, params)).fetchall())


async def open_db(db: str | Path | Target) -> AsyncDb:
    """Migrate (synchronously, once, at start-up) and open the bot's connection, set up like `connect`'s."""
    target = target_of(db)
    with_migrations = connect(target)
    try:
        migrate(with_migrations)
    finally:
        with_migrations.close()
    if target.is_postgres:
        return await AsyncPostgres.open(target.url)
    conn = await aiosqlite.connect(target.path, isolation_level=None, timeout=sql.BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {sql.BUSY_TIMEOUT_MS}")
    for pragma in sql.PRAGMAS:
        await conn.execute(pragma)
    return conn


def is_postgres(db: AsyncDb) -> bool:
    return isinstance(db, AsyncPostgres)


class AsyncJobQueue:
    def __init__(self, db: AsyncDb):
        self.db = db

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        chat_id: int | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
        max_attempts: int = 3,
    ) -> tuple[int, bool]:
        """Queue a job; returns (id, created). created is False when dedup_key was seen before."""
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
        row = await (await self.db.execute(sql.ENQUEUE, params)).fetchone()
        if row is not None:
            if is_postgres(self.db):
                await self.db.notify(QUEUED)  # idle workers wake now rather than at their next poll
            return row[0], True
        row = await (await self.db.execute(sql.BY_DEDUP, (dedup_key,))).fetchone()
        return row[0], False

    async def get(self, job_id: int) -> Job | None:
        row = await (await self.db.execute(sql.GET, (job_id,))).fetchone()
        return Job.from_row(row) if row else None

    async def cancel(self, job_id: int, *, user_id: int | None = None) -> bool:
        owner = "AND user_id = :user_id" if user_id is not None else ""
        cur = await self.db.execute(
            sql.CANCEL.format(owner=owner), dict(id=job_id, user_id=user_id, now=time.time())
        )
        return cur.rowcount == 1

    async def cancel_user_queued(self, user_id: int, kinds: tuple[str, ...] | None = None) -> list[int]:
        kinds_sql, kinds_params = sql.kinds_clause(kinds)
        statement = sql.CANCEL_USER_QUEUED.format(kinds=kinds_sql)
        rows = await (
            await self.db.execute(statement, dict(user_id=user_id, now=time.time(), **kinds_params))
        ).fetchall()
        return [r[0] for r in rows]

    async def position(self, job_id: int) -> int:
        return (await (await self.db.execute(sql.POSITION, dict(id=job_id))).fetchone())[0]

    async def jobs_ahead(self, job_id: int) -> int:
        """How many jobs the user waits for before this one starts: what every message says (issue 12).

        The queued ones that are claimed first (`position`, in the claim order, whatever that order is),
        plus the running ones it cannot overtake: a running training yields to interactive jobs, so it
        is ahead of another training but not of a photo. A job that is not queued has none ahead.
        """
        job = await self.get(job_id)
        if job is None or job.state != JobState.QUEUED:
            return 0
        running = await (await self.db.execute(sql.COUNT_RUNNING_AHEAD, dict(id=job_id))).fetchone()
        return await self.position(job_id) + running[0]

    async def count_unfinished(self, user_id: int) -> int:
        return (await (await self.db.execute(sql.COUNT_UNFINISHED_USER, (user_id,))).fetchone())[0]

    async def count_interactive(self, user_id: int) -> int:
        """Unfinished jobs of the user other than a training."""
        return (await (await self.db.execute(sql.COUNT_INTERACTIVE_USER, (user_id,))).fetchone())[0]

    async def count_queued(self) -> int:
        return (await (await self.db.execute(sql.COUNT_QUEUED)).fetchone())[0]

    async def count_running(self) -> int:
        return (await (await self.db.execute(sql.COUNT_RUNNING)).fetchone())[0]

    async def user_job_states(self, user_id: int) -> dict[int, str]:
        """Every job of the user, finished or not: id → state."""
        rows = await (await self.db.execute(sql.USER_JOB_STATES, (user_id,))).fetchall()
        return {r[0]: r[1] for r in rows}

    async def user_jobs(self, user_id: int) -> list[Job]:
        rows = await (await self.db.execute(sql.USER_JOBS, (user_id,))).fetchall()
        return [Job.from_row(r) for r in rows]

    async def expected_wait_s(self) -> float:
        """How long a new interactive job would wait (jobs/wait.py): fast mode's burst rule reads it."""
        statement, params = load_statement(getattr(self.db, "dialect", "sqlite"))
        row = await (await self.db.execute(statement, params)).fetchone()
        return expected_wait_s(QueueLoad.from_row(row))
