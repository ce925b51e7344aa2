"""The operator's queries: /stats' album counts, percentiles and failure counts over real rows."""

from __future__ import annotations

import time

from jobs import JobQueue
from jobs.aio import open_db
from jobs.ops_store import OpsStore, percentile
from jobs.store import BotStore


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == 10 and percentile(values, 0.95) == 19
    assert percentile([7.0], 0.95) == 7 and percentile([], 0.5) == 0


async def test_stats_latency_over_the_last_hour_and_failures_by_code(db) -> None:
    db_path = db
    queue = JobQueue(db_path, worker_id="w")
    for seconds in range(1, 11):  # ten stylize jobs that took 1..10 s from queued to done
        job_id = queue.enqueue("stylize", user_id=1, priority=10)
        queue.claim()
        queue.finish(job_id, {})
        queue.conn.execute("UPDATE jobs SET created_at = finished_at - ? WHERE id = ?", (seconds, job_id))
    old = queue.enqueue("stylize", user_id=1)
    queue.claim()
    queue.finish(old, {})
    queue.conn.execute(
        "UPDATE jobs SET finished_at = finished_at - 7200, created_at = 0 WHERE id = ?", (old,)
    )
    for code in ("no_face", "no_face", "internal"):
        job_id = queue.enqueue("portrait", user_id=2)
        queue.claim()
        queue.fail(job_id, code, "test")
    queue.enqueue("train", user_id=3)
    queue.close()

    conn = await open_db(db_path)
    try:
        stats = await OpsStore(conn).stats()
    finally:
        await conn.close()
    (stylize,) = stats.latency  # the job finished two hours ago is not in the last hour
    assert (stylize.kind, stylize.count) == ("stylize", 10)
    assert abs(stylize.p50_s - 5) < 0.01 and abs(stylize.p95_s - 10) < 0.01
    assert list(stats.failures.items()) == [("no_face", 2), ("internal", 1)]
    assert stats.queued == {"train": 1} and stats.running == {}


async def test_stats_count_the_sent_albums_of_every_kind_that_paints_one(db) -> None:
    queue = JobQueue(db, worker_id="w")
    sent = []
    for kind in ("stylize", "portrait", "pose", "train"):  # a training's answer is a message, not an album
        sent.append(queue.enqueue(kind, user_id=1))
        queue.finish(queue.claim().id, {})
    sent.append(queue.enqueue("pose", user_id=1))
    queue.fail(queue.claim().id, "no_face", "test")  # its answer says what went wrong
    unsent = queue.enqueue("pose", user_id=1)  # done, its album not sent yet
    queue.finish(queue.claim().id, {})
    queue.close()

    conn = await open_db(db)
    try:
        store = BotStore(conn)
        for job_id in [*sent, unsent]:
            await store.add_delivery(job_id, None)
        for job_id in sent:
            await store.mark_sent(job_id, [job_id])
        stats = await OpsStore(conn).stats()
        tomorrow = await OpsStore(conn).stats(now=time.time() + 86400)
    finally:
        await conn.close()
    assert (stats.albums_today, stats.albums_total) == (3, 3)  # the stylize, portrait and pose albums
    assert (tomorrow.albums_today, tomorrow.albums_total) == (0, 3)
