"""The operator's queries: blocked users, /stats, /queue, and the database half of /metrics.

Read-mostly and cheap: every query is an aggregate over an index (jobs_queue, jobs_user) or a small
table. Percentiles are computed here from the last hour's durations, because SQLite has no percentile
function and an hour of jobs is at most a few thousand numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from contract.kinds import ALBUM_KINDS
from jobs.aio import AsyncDb, fetch_all
from jobs.workers import WorkerRow, all_workers


@dataclass(frozen=True)
class Latency:
    kind: str
    count: int
    p50_s: float
    p95_s: float


@dataclass(frozen=True)
class Stats:
    users: int
    albums_today: int  # since midnight UTC
    albums_total: int
    queued: dict[str, int]  # kind → jobs waiting
    running: dict[str, int]
    failures: dict[str, int]  # error code → jobs failed in the last 24 hours
    latency: list[Latency]  # created → finished, jobs done in the last hour


@dataclass(frozen=True)
class QueuedJob:
    id: int
    kind: str
    state: str
    priority: int
    user_id: int | None
    attempts: int
    progress: float
    age_s: float


@dataclass(frozen=True)
class Snapshot:
    """What /metrics reads from the database at each scrape."""

    queue_depth: dict[tuple[str, int], int]  # (kind, priority) → queued jobs
    running: dict[str, int]
    deliveries_pending: int  # jobs that are over and not yet sent to their user
    workers: list[WorkerRow] = field(default_factory=list)
    at: float = 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(len(sorted_values) * fraction))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class OpsStore:
    def __init__(self, db: AsyncDb):
        self.db = db

    # -- blocked users -------------------------------------------------------------------------
    async def block(self, user_id: int, by: int) -> bool:
        cur = await self.db.execute(
            "INSERT INTO blocked_users (user_id, blocked_by, blocked_at) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            (user_id, by, time.time()),
        )
        return cur.rowcount == 1

    async def unblock(self, user_id: int) -> bool:
        cur = await self.db.execute("DELETE FROM blocked_users WHERE user_id = ?", (user_id,))
        return cur.rowcount == 1

    async def is_blocked(self, user_id: int) -> bool:
        return bool(await fetch_all(self.db, "SELECT 1 FROM blocked_users WHERE user_id = ?", (user_id,)))

    async def claim_block_notice(self, user_id: int, every_s: float) -> bool:
        """True (once per `every_s`) when the blocked user should hear why nothing happens."""
        now = time.time()
        cur = await self.db.execute(
            "UPDATE blocked_users SET notified_at = ?"
            " WHERE user_id = ? AND (notified_at IS NULL OR notified_at <= ?)",
            (now, user_id, now - every_s),
        )
        return cur.rowcount == 1

    # -- /stats --------------------------------------------------------------------------------
    async def stats(self, now: float | None = None) -> Stats:
        now = time.time() if now is None else now
        today = now - now % 86400
        kinds = ", ".join(f"'{k}'" for k in ALBUM_KINDS)
        (users,) = (await fetch_all(self.db, "SELECT COUNT(*) FROM users"))[0]
        albums = await fetch_all(
            self.db,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN d.updated_at >= ? THEN 1 ELSE 0 END), 0)"
            " FROM deliveries AS d JOIN jobs AS j ON j.id = d.job_id"
            f" WHERE d.state = 'sent' AND j.state = 'done' AND j.kind IN ({kinds})",
            (today,),
        )
        by_state = await fetch_all(
            self.db,
            "SELECT state, kind, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') GROUP BY state, kind",
        )
        failures = await fetch_all(
            self.db,
            "SELECT COALESCE(error_code, 'internal'), COUNT(*) FROM jobs"
            " WHERE state = 'failed' AND finished_at >= ? GROUP BY 1 ORDER BY 2 DESC, 1",
            (now - 86400,),
        )
        durations = await fetch_all(
            self.db,
            "SELECT kind, finished_at - created_at FROM jobs"
            " WHERE state = 'done' AND finished_at >= ? ORDER BY kind, 2",
            (now - 3600,),
        )
        return Stats(
            users=users,
            albums_today=albums[0][1],
            albums_total=albums[0][0],
            queued={kind: n for state, kind, n in by_state if state == "queued"},
            running={kind: n for state, kind, n in by_state if state == "running"},
            failures={code: n for code, n in failures},
            latency=_latencies(durations),
        )

    # -- /queue --------------------------------------------------------------------------------
    async def waiting_jobs(self, limit: int = 30) -> tuple[list[QueuedJob], int]:
        """The running jobs, then the queued ones in the order a worker takes them; and how many in all."""
        now = time.time()
        rows = await fetch_all(
            self.db,
            "SELECT id, kind, state, priority, user_id, attempts, progress, created_at FROM jobs"
            " WHERE state IN ('queued', 'running')"
            " ORDER BY CASE state WHEN 'running' THEN 0 ELSE 1 END, priority DESC, id LIMIT ?",
            (limit,),
        )
        (total,) = (
            await fetch_all(self.db, "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
        )[0]
        return [QueuedJob(*row[:7], age_s=now - row[7]) for row in rows], total

    # -- /metrics ------------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        depth = await fetch_all(
            self.db,
            "SELECT kind, priority, COUNT(*) FROM jobs WHERE state = 'queued' GROUP BY kind, priority",
        )
        running = await fetch_all(
            self.db, "SELECT kind, COUNT(*) FROM jobs WHERE state = 'running' GROUP BY kind"
        )
        (pending,) = (
            await fetch_all(
                self.db,
                "SELECT COUNT(*) FROM deliveries AS d JOIN jobs AS j ON j.id = d.job_id"
                " WHERE d.state IN ('pending', 'sending') AND j.state IN ('done', 'failed', 'cancelled')",
            )
        )[0]
        return Snapshot(
            queue_depth={(kind, priority): n for kind, priority, n in depth},
            running={kind: n for kind, n in running},
            deliveries_pending=pending,
            workers=await all_workers(self.db),
            at=time.time(),
        )


def _latencies(rows: list[Any]) -> list[Latency]:
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in rows:  # already sorted by kind, then duration
        by_kind.setdefault(kind, []).append(seconds)
    return [
        Latency(kind, len(values), percentile(values, 0.5), percentile(values, 0.95))
        for kind, values in by_kind.items()
    ]
