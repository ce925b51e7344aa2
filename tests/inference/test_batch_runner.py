"""The worker's stylize batches, in process on tiny models: shared batches, cancellation, look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import inference.stylize as stylize_module
from contract.styles import ARTISTS
from inference.settings import InferenceSettings
from inference.worker import Worker
from jobs import JobQueue, JobState

STEPS = 6


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads" / "1"
    folder.mkdir(parents=True)
    astronaut = Image.fromarray(skdata.astronaut())
    astronaut.resize((400, 320)).save(folder / "a.jpg", quality=95)  # 5:4
    astronaut.rotate(180).resize((500, 400)).save(folder / "b.jpg", quality=95)  # 5:4 too
    astronaut.resize((300, 450)).save(folder / "c.jpg", quality=95)  # 2:3: another bucket
    return tmp_path


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """How many photos each stylize_batch call painted (the real function runs)."""
    seen: list[int] = []
    real = stylize_module.stylize_batch

    def recording(models, items, **kw):
        seen.append(len(items))
        return real(models, items, **kw)

    monkeypatch.setattr(stylize_module, "stylize_batch", recording)
    return seen


def make_worker(data_dir: Path, tiny_models, **settings) -> Worker:
    settings = {"claim_batch": 4, "batch_photos": 2, **settings}
    return Worker(
        InferenceSettings(data_dir=data_dir, models="tiny", device="cpu", **settings), models=tiny_models
    )


def enqueue(queue: JobQueue, name: str, user: int) -> int:
    return queue.enqueue(
        "stylize", {"image": f"uploads/1/{name}", "steps": STEPS, "seed": user}, user_id=user
    )


def pictures(data_dir: Path, job) -> np.ndarray:
    return np.stack([np.asarray(Image.open(data_dir / i["path"]), np.int16) for i in job.result["images"]])


def test_photos_of_one_bucket_share_a_batch_and_get_the_pictures_they_would_get_alone(
    uploads: Path, tiny_models, calls: list[int]
) -> None:
    worker = make_worker(uploads, tiny_models)
    ids = [enqueue(worker.queue, name, user) for user, name in enumerate(("a.jpg", "c.jpg", "b.jpg"), 1)]
    assert worker.run_pending() == 3
    assert sorted(calls) == [1, 2]  # a and b together, c (another bucket) alone
    jobs = [worker.queue.get(i) for i in ids]
    assert all(job.state is JobState.DONE for job in jobs)
    assert all([i["style"] for i in job.result["images"]] == list(ARTISTS) for job in jobs)

    alone_dir = uploads / "alone"
    alone_dir.mkdir()
    (alone_dir / "uploads").symlink_to(uploads / "uploads", target_is_directory=True)
    alone = make_worker(alone_dir, tiny_models, claim_batch=1)
    again = enqueue(alone.queue, "b.jpg", 3)
    alone.run_pending()
    diff = np.abs(pictures(uploads, jobs[2]) - pictures(alone_dir, alone.queue.get(again)))
    assert diff.mean() < 1.0 and jobs[2].result["caption"] == alone.queue.get(again).result["caption"]


def test_cancelling_one_job_of_a_shared_batch_keeps_the_others(
    uploads: Path, tiny_models, monkeypatch
) -> None:
    worker = make_worker(uploads, tiny_models)
    first, second = enqueue(worker.queue, "a.jpg", 1), enqueue(worker.queue, "b.jpg", 2)
    real = stylize_module.stylize_batch

    def user_cancels_mid_batch(models, items, **kw):
        JobQueue(worker.settings.db_path).cancel(first, user_id=1)  # the bot's /cancel, from another process
        return real(models, items, **kw)

    monkeypatch.setattr(stylize_module, "stylize_batch", user_cancels_mid_batch)
    worker.run_pending()
    assert worker.queue.get(first).state is JobState.CANCELLED
    assert not (uploads / "results" / str(first)).exists()
    kept = worker.queue.get(second)
    assert kept.state is JobState.DONE and len(kept.result["images"]) == 4
    assert all((uploads / i["path"]).is_file() for i in kept.result["images"])


@pytest.mark.parametrize("processes", [0, 1], ids=["decoded-on-the-look-ahead-thread", "in-a-decode-process"])
def test_a_bad_photo_fails_alone_and_a_portrait_is_not_passed_over(
    uploads: Path, tiny_models, processes: int
) -> None:
    """With a decode process (the default on CUDA) too: the photo's JobError crosses back intact."""
    (uploads / "uploads" / "1" / "bad.jpg").write_bytes(b"not a jpeg at all" * 20)
    worker = make_worker(uploads, tiny_models, claim_batch=2, decode_processes=processes)
    good = enqueue(worker.queue, "a.jpg", 1)
    bad = enqueue(worker.queue, "bad.jpg", 2)
    portrait = worker.queue.enqueue("portrait", {"scene": "moon"}, user_id=3)  # no LoRA: fails fast
    later = enqueue(worker.queue, "b.jpg", 4)
    assert worker.run_pending() == 4
    states = {i: worker.queue.get(i) for i in (good, bad, portrait, later)}
    assert states[good].state is JobState.DONE and states[later].state is JobState.DONE
    assert states[bad].error_code == "not_an_image"
    assert states[portrait].state is JobState.FAILED  # it ran, in its turn: before `later`
    assert states[portrait].finished_at <= states[later].finished_at
    assert (worker.batches.decoders is not None) == (processes > 0)
    worker.close()


def test_fast_albums_of_one_bucket_share_a_batch_by_default_with_the_pictures_they_would_get_alone(
    uploads: Path, tiny_models, calls: list[int]
) -> None:
    """Fast mode comes in bursts: its albums batch across users without any setting (two per batch among
    eight claimed), and TCD's step noise comes from each picture's own generator, so batched or alone the
    pictures are the same."""

    def fast(queue: JobQueue, name: str, user: int) -> int:
        payload = {"image": f"uploads/1/{name}", "seed": user, "fast": True}
        return queue.enqueue("stylize", payload, user_id=user)

    worker = Worker(InferenceSettings(data_dir=uploads, models="tiny", device="cpu"), models=tiny_models)
    assert (worker.settings.batch_photos, worker.settings.claim_batch) == (1, 1)  # normal albums: opt-in
    ids = [fast(worker.queue, name, user) for user, name in enumerate(("a.jpg", "c.jpg", "b.jpg"), 1)]
    assert worker.run_pending() == 3
    assert sorted(calls) == [1, 2]  # a and b (one bucket) together, c alone
    jobs = [worker.queue.get(i) for i in ids]
    assert all(job.state is JobState.DONE and job.result["fast"] for job in jobs)

    alone_dir = uploads / "alone"
    alone_dir.mkdir()
    (alone_dir / "uploads").symlink_to(uploads / "uploads", target_is_directory=True)
    alone = Worker(
        InferenceSettings(data_dir=alone_dir, models="tiny", device="cpu", fast_batch_photos=1),
        models=tiny_models,
    )
    again = fast(alone.queue, "b.jpg", 3)
    alone.run_pending()
    diff = np.abs(pictures(uploads, jobs[2]) - pictures(alone_dir, alone.queue.get(again)))
    assert diff.max() <= 2, diff.max()
