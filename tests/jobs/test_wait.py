"""The expected wait for a new album (jobs/wait.py): counted from the queue, timed from finished jobs."""

from __future__ import annotations

import pytest

from jobs import JobQueue
from jobs.aio import AsyncJobQueue, open_db
from jobs.wait import DEFAULT_ALBUM_S, FAST_SHARE, burst


def add(
    queue: JobQueue, kind: str = "stylize", *, fast: bool | None = None, state: str = "queued", took=None
):
    payload = {"image": "x.jpg"} if fast is None else {"image": "x.jpg", "fast": fast}
    job_id = queue.enqueue(kind, payload, priority=10 if kind != "train" else 0)
    if state != "queued":
        queue.conn.execute(
            "UPDATE jobs SET state = ?, started_at = 100, finished_at = ?, worker = 'w1' WHERE id = ?",
            (state, None if took is None else 100 + took, job_id),
        )
    return job_id


def test_an_empty_queue_has_no_wait(db) -> None:
    assert JobQueue(db).expected_wait_s() == 0


def test_defaults_before_anything_finished_and_trainings_do_not_count(db) -> None:
    queue = JobQueue(db)
    for _ in range(3):
        add(queue)
    add(queue, fast=True)
    add(queue, "train")
    add(queue, fast=False, state="running")
    assert queue.expected_wait_s() == pytest.approx(4 * DEFAULT_ALBUM_S + DEFAULT_ALBUM_S * FAST_SHARE)


def test_measured_times_per_schedule_and_divided_by_the_jobs_in_progress(db) -> None:
    queue = JobQueue(db)
    add(queue, state="done", took=3.0)
    add(queue, state="done", took=5.0)
    add(queue, "portrait", fast=True, state="done", took=0.5)
    add(queue, state="failed", took=60.0)  # failures are not a measure of an album
    for _ in range(4):
        add(queue)
    for _ in range(2):
        add(queue, fast=True)
    assert queue.expected_wait_s() == pytest.approx(4 * 4.0 + 2 * 0.5)
    add(queue, state="running")
    second = add(queue, state="running")
    queue.conn.execute("UPDATE jobs SET worker = 'w2' WHERE id = ?", (second,))
    assert queue.expected_wait_s() == pytest.approx((6 * 4.0 + 2 * 0.5) / 2)
    # One worker holding two jobs at once (one painted, the next claimed ahead, or a shared batch) gets
    # through them as fast as two workers with one each: each job's run time spans both.
    queue.conn.execute("UPDATE jobs SET worker = 'w1' WHERE id = ?", (second,))
    assert queue.expected_wait_s() == pytest.approx((6 * 4.0 + 2 * 0.5) / 2)
    add(queue, "train", state="running")  # a training in progress does not paint albums
    assert queue.expected_wait_s() == pytest.approx((6 * 4.0 + 2 * 0.5) / 2)


def test_only_fast_jobs_timed_gives_the_normal_time_from_the_share(db) -> None:
    queue = JobQueue(db)
    add(queue, fast=True, state="done", took=1.0)
    add(queue)
    assert queue.expected_wait_s() == pytest.approx(1.0 / FAST_SHARE)


async def test_the_bot_reads_the_same_number(db) -> None:
    queue = JobQueue(db)
    add(queue, state="done", took=2.5)
    add(queue)
    add(queue, fast=True)
    conn = await open_db(db)
    try:
        assert await AsyncJobQueue(conn).expected_wait_s() == pytest.approx(queue.expected_wait_s())
    finally:
        await conn.close()


def test_burst_rule() -> None:
    assert burst(20.0, 20.0) and burst(45.0, 20.0)
    assert not burst(19.9, 20.0)
    assert not burst(1e6, 0)  # 0 switches fast mode under load off
