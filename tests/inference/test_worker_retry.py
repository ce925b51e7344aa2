"""The worker's failure handling, in process: OOM retry with a smaller batch, bugs, cancellation, release."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from inference import handlers
from inference import worker as worker_module
from inference.context import JobContext
from inference.settings import InferenceSettings
from inference.worker import Worker
from jobs import JobQueue, JobState

CALLS: list[int | None] = []


def oom_until_small(ctx: JobContext, job) -> dict:
    """Needs a batch of at most 2; the first call (full batch of 4) runs out of memory."""
    CALLS.append(ctx.max_batch)
    if ctx.max_batch is None or ctx.max_batch > job.payload["fits"]:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return {"batch": ctx.max_batch}


def buggy(ctx: JobContext, job) -> dict:
    raise KeyError("a bug")


def stops_when_told(ctx: JobContext, job) -> dict:
    from PIL import Image

    ctx.save_image(Image.new("RGB", (8, 8)), "00_partial.jpg")  # written before the stop is noticed
    ctx.worker.stopping = job.payload.get("sigterm", False)
    if job.payload.get("cancel"):
        ctx.queue.cancel(job.id)
    assert not ctx.report(0.5, "halfway")
    return {"should": "not be recorded"}


@pytest.fixture
def worker(tmp_path: Path, monkeypatch) -> Worker:
    for name in ("oom_until_small", "buggy", "stops_when_told"):
        monkeypatch.setitem(handlers.HANDLERS, name, f"{__name__}:{name}")
    monkeypatch.setattr(worker_module, "BATCHED_KINDS", (*worker_module.BATCHED_KINDS, "oom_until_small"))
    CALLS.clear()
    settings = InferenceSettings(data_dir=tmp_path, models="tiny", device="cpu")
    return Worker(settings, models=object(), lease_s=5)


def run_one(worker: Worker, kind: str, payload: dict, **kw) -> int:
    job_id = worker.queue.enqueue(kind, payload, **kw)
    worker.kinds = tuple(handlers.HANDLERS)
    assert worker.run_pending() == 1
    return job_id


def test_an_out_of_memory_job_is_retried_once_with_half_the_batch(worker: Worker) -> None:
    job_id = run_one(worker, "oom_until_small", {"styles": ["a", "b", "c", "d"], "fits": 2})
    job = worker.queue.get(job_id)
    assert CALLS == [None, 2]
    assert job.state is JobState.DONE and job.result == {"batch": 2}


def test_a_second_out_of_memory_fails_the_job_with_its_code(worker: Worker) -> None:
    job_id = run_one(worker, "oom_until_small", {"styles": ["a", "b", "c", "d"], "fits": 1})
    job = worker.queue.get(job_id)
    assert CALLS == [None, 2]
    assert job.state is JobState.FAILED and job.error_code == "out_of_memory"


def test_a_bug_fails_the_job_and_the_worker_goes_on(worker: Worker) -> None:
    bad = run_one(worker, "buggy", {})
    good = run_one(worker, "oom_until_small", {"fits": 8})
    assert (
        worker.queue.get(bad).error_code == "internal" and "KeyError" in worker.queue.get(bad).error_message
    )
    assert worker.queue.get(good).state is JobState.DONE


def test_a_cancelled_job_is_not_recorded_as_done_and_leaves_no_pictures(worker: Worker) -> None:
    job_id = run_one(worker, "stops_when_told", {"cancel": True})
    assert worker.queue.get(job_id).state is JobState.CANCELLED
    assert not (worker.settings.data_dir / "results" / str(job_id)).exists()


def test_a_job_deleted_while_it_ran_leaves_no_pictures(worker: Worker, monkeypatch) -> None:
    def deleted_meanwhile(ctx: JobContext, job) -> dict:
        from PIL import Image

        path = ctx.save_image(Image.new("RGB", (8, 8)), "00_x.jpg")
        ctx.queue.conn.execute("DELETE FROM jobs WHERE id = ?", (job.id,))  # the user said /forget
        return {"images": [{"path": path}]}

    monkeypatch.setattr(sys.modules[__name__], "deleted_meanwhile", deleted_meanwhile, raising=False)
    monkeypatch.setitem(handlers.HANDLERS, "deleted_meanwhile", f"{__name__}:deleted_meanwhile")
    job_id = run_one(worker, "deleted_meanwhile", {})
    assert worker.queue.get(job_id) is None
    assert not (worker.settings.data_dir / "results" / str(job_id)).exists()


def test_a_job_stopped_by_sigterm_goes_back_to_the_queue_without_spending_an_attempt(worker: Worker) -> None:
    job_id = worker.queue.enqueue("stops_when_told", {"sigterm": True})
    worker.kinds = tuple(handlers.HANDLERS)
    worker.run_pending()
    job = worker.queue.get(job_id)
    assert job.state is JobState.QUEUED and job.attempts == 0
    assert JobQueue(worker.settings.db_path).claim() is not None  # another worker can take it


def test_a_kind_without_a_batch_is_not_retried_after_out_of_memory(worker: Worker, monkeypatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "unbatched", f"{__name__}:oom_until_small")
    job_id = run_one(worker, "unbatched", {"fits": 2})
    assert CALLS == [None]  # the same allocation again would only fail again
    assert worker.queue.get(job_id).error_code == "out_of_memory"


def finished_elsewhere(ctx: JobContext, job) -> dict:
    """This worker stalled past its lease; another claimed the job and finished it into the same folder."""
    from PIL import Image

    path = ctx.save_image(Image.new("RGB", (8, 8)), "00_x.jpg")
    ctx.queue.conn.execute(
        "UPDATE jobs SET worker = 'other', state = 'done', result = ? WHERE id = ?",
        (f'{{"images": [{{"path": "{path}"}}]}}', job.id),
    )
    return {"images": [{"path": path}]}


def test_pictures_of_a_job_another_worker_finished_are_kept(worker: Worker, monkeypatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "finished_elsewhere", f"{__name__}:finished_elsewhere")
    job_id = run_one(worker, "finished_elsewhere", {})
    job = worker.queue.get(job_id)
    assert job.state is JobState.DONE and job.worker == "other"
    assert (worker.settings.data_dir / job.result["images"][0]["path"]).is_file()
