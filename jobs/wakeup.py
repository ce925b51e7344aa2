"""Waiting for the queue to change: LISTEN/NOTIFY on PostgreSQL, a plain sleep on SQLite.

`wait(timeout)` returns as soon as someone NOTIFYs the channel (jobs/queue.py: a job queued, a job over)
or when the timeout passes, so polling stays as the fallback: a lost connection or a missed
notification costs one poll interval, never a job. The listener has a connection of its own because
psycopg delivers notifications to the connection that LISTENs, between that connection's statements.
LISTEN is issued when the waiter is made, before its owner first looks at the queue: a NOTIFY sent
between "the queue is empty" and `wait` is kept by the connection and ends the next wait at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import psycopg

from jobs.db import Target, channel_name, target_of

log = logging.getLogger("artbooth.jobs.wakeup")


class Wakeup:
    """For the worker (sync)."""

    def __init__(self, db: str | Path | Target, channel: str):
        target = target_of(db)
        self.conn: psycopg.Connection | None = None
        if target.is_postgres:
            self.conn = psycopg.connect(target.url, autocommit=True)
            schema = self.conn.execute("SELECT current_schema()").fetchone()[0]
            self.conn.execute(f'LISTEN "{channel_name(channel, schema)}"')

    def wait(self, timeout: float) -> bool:
        """True when woken by a notification, False after the timeout."""
        if self.conn is None:
            time.sleep(timeout)
            return False
        try:
            woken = any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))
            if woken:  # several jobs queued at once: one look at the queue serves them all
                for _ in self.conn.notifies(timeout=0):
                    pass
            return woken
        except psycopg.Error as error:
            log.warning("LISTEN connection failed (%s): polling instead", error)
            self.conn = None
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class AsyncWakeup:
    """For the bot's delivery loop (async)."""

    def __init__(self, conn: psycopg.AsyncConnection | None):
        self.conn = conn

    @classmethod
    async def listen(cls, db: str | Path | Target, channel: str) -> AsyncWakeup:
        target = target_of(db)
        if not target.is_postgres:
            return cls(None)
        conn = await psycopg.AsyncConnection.connect(target.url, autocommit=True)
        schema = (await (await conn.execute("SELECT current_schema()")).fetchone())[0]
        await conn.execute(f'LISTEN "{channel_name(channel, schema)}"')
        return cls(conn)

    async def wait(self, timeout: float) -> bool:
        if self.conn is None:
            await asyncio.sleep(timeout)
            return False
        try:
            woken = False
            async for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                woken = True
            if woken:
                async for _ in self.conn.notifies(timeout=0):
                    pass
            return woken
        except psycopg.Error as error:
            log.warning("LISTEN connection failed (%s): polling instead", error)
            self.conn = None
            return False

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
