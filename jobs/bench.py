"""`python -m jobs.bench [--database URL]`: the queue's own costs, no models (docs/benchmarks.md).

1. overhead: enqueue + claim + finish of one no-op job, one process, one after another;
2. wake-up: enqueue → claim latency for an idle worker, woken by NOTIFY (PostgreSQL) or polling with
   the worker's back-off (50 ms doubling to 1 s, inference/worker.py);
3. drain: 4 worker processes claiming and finishing 2,000 no-op jobs queued beforehand.

Without --database it runs on a fresh SQLite file in a temporary folder. With a PostgreSQL URL it works
in a schema of its own (dropped afterwards), so it can point at a shared server.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from jobs.db import target_of
from jobs.queue import QUEUED, JobQueue
from jobs.wakeup import Wakeup


def overhead(db: str, n: int = 1000) -> float:
    """Microseconds per job for enqueue + claim + finish."""
    q = JobQueue(db, worker_id="bench")
    started = time.perf_counter()
    for _ in range(n):
        job_id = q.enqueue("noop", {"x": 1})
        q.claim()
        q.finish(job_id, {"ok": True})
    q.close()
    return (time.perf_counter() - started) / n * 1e6


def _idle_worker(db: str, listen: bool, ready, stop) -> None:
    q = JobQueue(db, worker_id="idle", migrate_schema=False)
    wakeup = Wakeup(db, QUEUED) if listen else None
    ready.set()
    idle = 0.05
    while not stop.is_set():
        job = q.claim()
        if job is not None:
            q.finish(job.id, {"claimed_at": time.time()})
            idle = 0.05
            continue
        wakeup.wait(idle) if wakeup else time.sleep(idle)
        idle = min(idle * 2, 1.0)


def wakeup_latency(db: str, listen: bool, trials: int = 20) -> list[float]:
    """Milliseconds from enqueue to claim, for a worker that had gone idle (1-2.5 s without work)."""
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    worker = ctx.Process(target=_idle_worker, args=(db, listen, ready, stop))
    worker.start()
    ready.wait(30)
    q = JobQueue(db, worker_id="producer", migrate_schema=False)
    latencies = []
    for i in range(trials):
        time.sleep(1.0 + (i % 4) * 0.5)  # idle long enough for the back-off to reach its 1 s ceiling
        job_id = q.enqueue("noop")
        while (job := q.get(job_id)).result is None:
            time.sleep(0.005)
        latencies.append((job.result["claimed_at"] - job.created_at) * 1000)
    stop.set()
    worker.join(10)
    return latencies


def _drain(db: str, name: str, barrier, out) -> None:
    q = JobQueue(db, worker_id=name, migrate_schema=False)
    barrier.wait()
    done = 0
    while (job := q.claim()) is not None:
        q.finish(job.id, {})
        done += 1
    out.put((done, time.perf_counter()))


def drain(db: str, jobs: int = 2000, workers: int = 4) -> float:
    """Jobs per second for `workers` processes draining `jobs` queued no-op jobs."""
    q = JobQueue(db)
    for i in range(jobs):
        q.enqueue("noop", {"i": i}, user_id=i % 50)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(db, f"w{i}", barrier, out)) for i in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(10)
    assert sum(done for done, _ in results) == jobs
    return jobs / (max(end for _, end in results) - started)


def run(db: str) -> None:
    postgres = target_of(db).is_postgres
    print(f"backend: {'PostgreSQL' if postgres else 'SQLite'}")
    print(f"overhead: {overhead(db):.0f} µs per job (enqueue + claim + finish)")
    modes = [("NOTIFY", True), ("polling", False)] if postgres else [("polling", False)]
    for label, listen in modes:
        ms = sorted(wakeup_latency(db, listen))
        print(
            f"wake-up ({label}): median {statistics.median(ms):.1f} ms, "
            f"p90 {ms[int(len(ms) * 0.9)]:.1f} ms, max {ms[-1]:.1f} ms"
        )
    print(f"drain: {drain(db):.0f} jobs/s (4 processes, 2,000 no-op jobs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="postgresql://… (default: a temporary SQLite file)")
    args = parser.parse_args()
    if not args.database:
        with tempfile.TemporaryDirectory() as folder:
            run(str(Path(folder) / "bench.sqlite3"))
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in args.database else "?"
            run(f"{args.database}{separator}options={quote(f'-csearch_path={schema}')}")
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
