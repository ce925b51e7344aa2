"""The `workers` table: each inference worker's heartbeat row, read by the bot's /metrics.

Workers run in other processes (the embedded one is a child, external ones may be on other hosts), so
they report through the database they already share with the bot rather than through an endpoint of
their own: no second port to open and scrape per GPU, and the bot's one endpoint shows every worker,
including one that died (its row goes stale) or was never started.

A row is keyed by a slot, '<host>/<device>', so a restarted worker updates the same row and counts a start.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the worker side needs no aiosqlite
    from jobs.db import Connection

BEAT_EVERY_S = 5.0
STALE_AFTER_S = 3 * BEAT_EVERY_S  # three missed beats: the worker is down

STARTED = """
INSERT INTO workers (name, pid, starts, started_at, seen_at) VALUES (:name, :pid, 1, :now, :now)
ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, starts = workers.starts + 1,
    started_at = excluded.started_at, seen_at = excluded.seen_at, stopped_at = NULL,
    gpu_allocated_bytes = NULL, gpu_reserved_bytes = NULL
"""
BEAT = """
UPDATE workers SET seen_at = :now, gpu_allocated_bytes = :allocated, gpu_reserved_bytes = :reserved
WHERE name = :name AND pid = :pid
"""
STOPPED = "UPDATE workers SET stopped_at = :now WHERE name = :name AND pid = :pid"
ALL = "SELECT name, pid, starts, seen_at, stopped_at, gpu_allocated_bytes, gpu_reserved_bytes FROM workers"


def slot_name(device: str) -> str:
    return f"{socket.gethostname()}/{device}"


@dataclass(frozen=True)
class WorkerRow:
    name: str
    pid: int
    starts: int
    seen_at: float
    stopped_at: float | None
    gpu_allocated_bytes: int | None
    gpu_reserved_bytes: int | None

    def up(self, now: float) -> bool:
        return self.stopped_at is None and now - self.seen_at < STALE_AFTER_S


class WorkerBeats:
    """The worker's side, on its own synchronous connection (it beats from a thread of its own)."""

    def __init__(self, conn: Connection, name: str, pid: int):
        self.conn, self.name, self.pid = conn, name, pid

    def started(self) -> None:
        self.conn.execute(STARTED, dict(name=self.name, pid=self.pid, now=time.time()))

    def beat(self, allocated: int | None = None, reserved: int | None = None) -> None:
        params = dict(name=self.name, pid=self.pid, now=time.time(), allocated=allocated, reserved=reserved)
        self.conn.execute(BEAT, params)

    def stopped(self) -> None:
        self.conn.execute(STOPPED, dict(name=self.name, pid=self.pid, now=time.time()))


async def all_workers(db: Any) -> list[WorkerRow]:
    """The bot's side."""
    return [WorkerRow(*row) for row in await (await db.execute(ALL)).fetchall()]
