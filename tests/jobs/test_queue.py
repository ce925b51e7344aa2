"""The queue: migrations, claims across processes, leases, attempts, cancel, the async API.

Every test that takes `db` runs twice: on a SQLite file and on a PostgreSQL schema (tests/conftest.py).
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from pathlib import Path

import pytest

from jobs import JobQueue, JobState, connect, migrate
from jobs.aio import AsyncJobQueue, open_db
from jobs.schema import list_migrations


def test_migrations_apply_to_an_empty_file_and_again_as_a_no_op(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3").raw
    latest = len(list_migrations())
    assert migrate(connect(tmp_path / "db.sqlite3")) == latest
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "jobs", "deliveries"} <= tables
    schema = conn.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    assert migrate(connect(tmp_path / "db.sqlite3")) == latest
    assert conn.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0] == schema
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_a_broken_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations / "0002_b.sql").write_text("CREATE TABLE b (y INTEGER);\nCREATE TABLE a (x INTEGER);\n")
    conn = connect(tmp_path / "db.sqlite3")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, migrations)
    conn = conn.raw
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'b')").fetchone()[0] == 0


def test_migrations_apply_to_an_empty_postgres_schema_and_again_as_a_no_op(postgres_url: str) -> None:
    conn = connect(postgres_url)
    latest = len(list_migrations())
    assert migrate(conn) == latest
    assert migrate(conn) == latest
    columns = dict(
        conn.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
    )
    assert {"users.id", "jobs.turn", "deliveries.reply_to", "files.data"} <= set(columns)
    # Telegram ids pass 2^31 and seconds since 1970 need more than a 4-byte float.
    assert columns["users.id"] == "bigint" and columns["jobs.created_at"] == "double precision"
    assert columns["files.data"] == "bytea"


def test_a_broken_migration_leaves_a_postgres_schema_as_it_was(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations / "0002_b.sql").write_text("CREATE TABLE b (y INTEGER);\nCREATE TABLE a (x INTEGER);\n")
    conn = connect(postgres_url)
    with pytest.raises(psycopg.errors.DuplicateTable):
        migrate(conn, migrations)
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    assert conn.execute(tables).fetchone()[0] == 0


def test_claim_order_is_priority_then_age(db) -> None:
    q = JobQueue(db)
    low = q.enqueue("train", {"n": 1}, priority=0)
    first = q.enqueue("stylize", {"n": 2}, priority=10)
    second = q.enqueue("stylize", {"n": 3}, priority=10)
    assert q.position(low) == 2 and q.position(first) == 0 and q.position(second) == 1
    assert [q.claim().id for _ in range(3)] == [first, second, low]
    assert q.claim() is None


def test_users_take_turns_within_a_priority(db) -> None:
    # A burst: three users send five photos each, one after the other; a training waits below them.
    q = JobQueue(db)
    train = q.enqueue("train", user_id=1, priority=0)
    jobs = {user: [q.enqueue("stylize", user_id=user, priority=10) for _ in range(5)] for user in (1, 2, 3)}
    expected = [jobs[user][n] for n in range(5) for user in (1, 2, 3)] + [train]
    assert [q.position(job_id) for job_id in expected] == list(range(16))  # "N ahead of you" agrees
    first = q.claim()
    assert first.id == jobs[1][0]
    # A user who comes now joins the current round: after those already waiting in it, before anyone's second.
    late = q.enqueue("stylize", user_id=4, priority=10)
    assert q.position(late) == 2
    expected.insert(3, late)
    claimed = [first.id] + [q.claim().id for _ in range(16)]
    assert claimed == expected
    assert q.claim() is None


def test_a_users_next_photo_waits_for_the_others_even_after_theirs_finished(db) -> None:
    q = JobQueue(db)
    a1, a2 = q.enqueue("stylize", user_id=1), q.enqueue("stylize", user_id=1)
    b1 = q.enqueue("stylize", user_id=2)
    assert q.claim().id == a1 and q.finish(a1, {})
    a3 = q.enqueue("stylize", user_id=1)  # user 1 keeps sending while user 2's first still waits
    assert [q.claim().id for _ in range(3)] == [b1, a2, a3]


def test_claim_by_kind_and_min_priority(db) -> None:
    q = JobQueue(db)
    train = q.enqueue("train", priority=0)
    assert q.claim(min_priority=10) is None
    assert not q.has_waiting(10)
    style = q.enqueue("stylize", priority=10)
    assert q.has_waiting(10)
    assert q.claim(("train",)).id == train
    assert q.claim(("train",)) is None
    assert q.claim(("stylize",), min_priority=10).id == style


def test_dedup_key_records_a_request_once(db) -> None:
    q = JobQueue(db)
    a = q.enqueue("stylize", {"image": "a.jpg"}, dedup_key="tg:100")
    b = q.enqueue("stylize", {"image": "other.jpg"}, dedup_key="tg:100")
    assert a == b
    assert q.get(a).payload == {"image": "a.jpg"}


def test_finish_and_fail_record_outcomes_once(db) -> None:
    q = JobQueue(db)
    a, b = q.enqueue("stylize"), q.enqueue("stylize")
    ja, jb = q.claim(), q.claim()
    assert q.progress(ja.id, 0.5, "half", eta_s=3.0)
    assert q.get(a).progress == 0.5 and q.get(a).progress_text == "half"
    assert q.finish(ja.id, {"images": ["x.jpg"]})
    assert not q.fail(ja.id, "internal", "too late")  # a finished job stays finished
    assert q.fail(jb.id, "not_an_image", "that file is not a picture")
    done, failed = q.get(a), q.get(b)
    assert done.state is JobState.DONE and done.result == {"images": ["x.jpg"]} and done.progress == 1
    assert failed.state is JobState.FAILED and failed.error_code == "not_an_image"


def test_an_expired_lease_is_requeued_and_the_old_worker_loses_it(db) -> None:
    dead = JobQueue(db, worker_id="dead", lease_s=0.05)
    alive = JobQueue(db, worker_id="alive", lease_s=30)
    job_id = dead.enqueue("stylize")
    assert dead.claim().id == job_id
    assert alive.requeue_expired() == ([], [])  # not expired yet
    time.sleep(0.1)
    assert alive.requeue_expired() == ([job_id], [])
    job = alive.claim()
    assert job.id == job_id and job.attempts == 2 and job.worker == "alive"
    # The worker that lost its lease can no longer touch the job.
    assert not dead.heartbeat(job_id) and not dead.finish(job_id, {}) and not dead.fail(job_id, "x", "y")
    assert alive.finish(job_id, {"ok": True})


def test_the_attempt_limit_fails_a_job_that_keeps_killing_workers(db) -> None:
    q = JobQueue(db, lease_s=0.01)
    job_id = q.enqueue("stylize", max_attempts=2)
    for _ in range(2):
        assert q.claim().id == job_id
        time.sleep(0.03)
        q.requeue_expired()
    job = q.get(job_id)
    assert job.state is JobState.FAILED and job.error_code == "worker_lost" and job.attempts == 2
    assert q.claim() is None


def test_heartbeat_keeps_a_lease_alive(db) -> None:
    q = JobQueue(db, lease_s=0.2)
    job_id = q.enqueue("stylize")
    q.claim()
    for _ in range(4):
        time.sleep(0.1)
        assert q.heartbeat(job_id)
        assert q.requeue_expired() == ([], [])
    assert q.get(job_id).state is JobState.RUNNING


def test_release_on_shutdown_does_not_spend_an_attempt(db) -> None:
    q = JobQueue(db)
    job_id = q.enqueue("train")
    q.claim()
    assert q.release(job_id)
    job = q.get(job_id)
    assert job.state is JobState.QUEUED and job.attempts == 0 and job.worker is None


def test_cancel_queued_and_running_and_only_ones_own(db) -> None:
    q = JobQueue(db)
    queued = q.enqueue("stylize", user_id=1)
    running = q.enqueue("train", user_id=1, priority=20)
    assert q.claim().id == running
    assert not q.cancel(queued, user_id=2)  # someone else's job
    assert q.cancel(queued, user_id=1)
    assert q.cancel(running)
    assert q.get(queued).state is JobState.CANCELLED
    assert not q.heartbeat(running)  # the worker learns it must stop
    assert not q.progress(running, 0.5)
    assert not q.cancel(queued)  # already finished
    assert q.claim() is None


def _claim_all(db: str, worker: str, out: mp.Queue, start) -> None:
    q = JobQueue(db, worker_id=worker)
    start.wait()  # all four connected: now they race
    claimed = []
    while (job := q.claim()) is not None:
        claimed.append(job.id)
        q.finish(job.id, {"by": worker})
    out.put(claimed)


def _race(target, db: str, workers: int) -> list[list[int]]:
    """`workers` spawned processes run `target(db, name, out, start)` together; each one's claimed job ids."""
    ctx = mp.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(workers)
    procs = [ctx.Process(target=target, args=(db, f"w{i}", out, start)) for i in range(workers)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return claimed


def test_several_processes_never_claim_a_job_twice(db) -> None:
    db = str(db)
    q = JobQueue(db)
    ids = [q.enqueue("stylize", {"i": i}) for i in range(800)]
    claimed = _race(_claim_all, db, 4)
    every = [job_id for batch in claimed for job_id in batch]
    assert len(every) == len(set(every)) == 800
    assert sorted(every) == ids
    assert sum(1 for batch in claimed if batch) >= 2  # they really competed
    workers = {q.get(i).result["by"] for i in ids}
    assert workers == {q.get(i).worker for i in ids}


async def test_async_api_shares_the_queue_with_the_sync_one(db) -> None:
    db_path, db = db, await open_db(db)
    try:
        aq = AsyncJobQueue(db)
        first, created = await aq.enqueue("stylize", {"image": "a.jpg"}, user_id=7, dedup_key="tg:1")
        again, created_again = await aq.enqueue("stylize", {"image": "a.jpg"}, user_id=7, dedup_key="tg:1")
        assert created and not created_again and again == first
        second, _ = await aq.enqueue("stylize", user_id=8)
        assert await aq.position(second) == 1
        assert await aq.count_unfinished(7) == 1 and await aq.count_queued() == 2

        worker = JobQueue(db_path)
        assert worker.claim().id == first
        assert await aq.count_running() == 1
        assert [j.id for j in await aq.user_jobs(7)] == [first]
        assert await aq.cancel_user_queued(8) == [second]
        assert (await aq.get(second)).state is JobState.CANCELLED
        worker.finish(first, {"caption": "a cat"})
        assert (await aq.get(first)).result == {"caption": "a cat"}
    finally:
        await db.close()


def test_claim_many_takes_several_jobs_in_claim_order_in_one_statement(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "db.sqlite3", worker_id="w")
    train = q.enqueue("train", priority=0)
    photos = [q.enqueue("stylize", {"i": i}, priority=10) for i in range(5)]
    portrait = q.enqueue("portrait", priority=10)
    batch = q.claim_many(3, ("stylize",), min_priority=10)
    assert [job.id for job in batch] == photos[:3]
    assert all(job.state is JobState.RUNNING and job.worker == "w" and job.attempts == 1 for job in batch)
    assert all(job.lease_until and job.started_at for job in batch)
    assert [job.id for job in q.claim_many(10, ("stylize",))] == photos[3:]
    assert q.claim_many(4, ("stylize",)) == []
    assert [job.id for job in q.claim_many(4)] == [portrait, train]  # priority first, then age
    assert q.unclaim(photos[4]) and not q.unclaim(photos[4])
    again = q.get(photos[4])
    assert again.state is JobState.QUEUED and again.attempts == 0 and again.started_at is None
    assert JobQueue(tmp_path / "db.sqlite3", worker_id="other").claim_many(5)[0].id == photos[4]


def _claim_many_all(db: str, worker: str, out: mp.Queue, start) -> None:
    q = JobQueue(db, worker_id=worker)
    start.wait()
    claimed = []
    while batch := q.claim_many(3):
        claimed += [job.id for job in batch]
        for job in batch:
            q.finish(job.id, {"by": worker})
    out.put(claimed)


def test_processes_claiming_batches_never_claim_a_job_twice(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite3")
    q = JobQueue(db)
    ids = [q.enqueue("stylize", {"i": i}) for i in range(300)]
    claimed = _race(_claim_many_all, db, 3)
    every = [job_id for batch in claimed for job_id in batch]
    assert sorted(every) == ids and len(set(every)) == 300
