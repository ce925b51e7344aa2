"""The worker as a real subprocess on tiny models: end to end, failing jobs, SIGTERM, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skdata

from contract.kinds import TrainPhase
from contract.styles import ARTISTS
from jobs import JobQueue, JobState

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, tiny_settings) -> Path:
    """A fresh DATA_DIR that shares the session's already-built tiny models."""
    (tmp_path / "models").symlink_to(tiny_settings.data_dir / "models", target_is_directory=True)
    uploads = tmp_path / "uploads" / "1"
    uploads.mkdir(parents=True)
    Image.fromarray(skdata.astronaut()).save(uploads / "astronaut.jpg", quality=90)
    (uploads / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    return tmp_path


class WorkerProcess:
    def __init__(self, data_dir: Path, *extra: str):
        env = dict(os.environ, DATA_DIR=str(data_dir), MODELS="tiny", DEVICE="cpu", PYTHONUNBUFFERED="1")
        self.log = (data_dir / f"worker-{time.monotonic_ns()}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inference", "worker", *extra],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def start_worker(data_dir: Path) -> Iterator:
    workers: list[WorkerProcess] = []

    def start(*extra: str) -> WorkerProcess:
        workers.append(WorkerProcess(data_dir, *extra))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def wait_for(queue: JobQueue, job_id: int, states: set[JobState], worker: WorkerProcess, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queue.get(job_id)
        if job.state in states:
            return job
        assert worker.proc.poll() is None, f"worker exited:\n{worker.output()}"
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {queue.get(job_id).state} after {timeout}s:\n{worker.output()}")


FINAL = {JobState.DONE, JobState.FAILED, JobState.CANCELLED}


def test_worker_runs_a_stylize_job_end_to_end_and_survives_a_bad_one(data_dir: Path, start_worker) -> None:
    queue = JobQueue(data_dir / "artbooth.sqlite3")
    bad = queue.enqueue("stylize", {"image": "uploads/1/corrupt.jpg"}, user_id=1, priority=10)
    good = queue.enqueue("stylize", {"image": "uploads/1/astronaut.jpg", "seed": 3}, user_id=1, priority=10)
    worker = start_worker()

    failed = wait_for(queue, bad, FINAL, worker)
    assert failed.state is JobState.FAILED and failed.error_code == "not_an_image"
    done = wait_for(queue, good, FINAL, worker)
    assert done.state is JobState.DONE, done.error_message
    assert [img["style"] for img in done.result["images"]] == list(ARTISTS)
    assert done.result["caption"] and done.result["caption"] == done.result["caption"].lower()
    sizes = set()
    for image in done.result["images"]:
        path = data_dir / image["path"]
        assert path.is_file() and path.parent == data_dir / "results" / str(good)
        with Image.open(path) as picture:
            sizes.add(picture.size)
    assert len(sizes) == 1 and all(side % 8 == 0 for side in sizes.pop())
    assert worker.proc.poll() is None  # one bad job does not take the worker down


def test_worker_exits_promptly_on_sigterm(data_dir: Path, start_worker) -> None:
    queue = JobQueue(data_dir / "artbooth.sqlite3")
    job = queue.enqueue("stylize", {"image": "uploads/1/astronaut.jpg"}, priority=10)
    worker = start_worker()
    wait_for(queue, job, FINAL, worker)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=15) == 0
    assert "stopped" in worker.output()


def test_a_job_whose_worker_was_killed_is_finished_by_the_next_worker(data_dir: Path, start_worker) -> None:
    queue = JobQueue(data_dir / "artbooth.sqlite3")
    first = start_worker("--lease", "2")
    warmup = queue.enqueue("stylize", {"image": "uploads/1/astronaut.jpg"}, priority=10)
    wait_for(queue, warmup, FINAL, first)  # models loaded: the next job is claimed at once

    # Many steps: the job runs for seconds on tiny models, so the kill lands mid-job.
    payload = {"image": "uploads/1/astronaut.jpg", "steps": 400}
    job_id = queue.enqueue("stylize", payload, priority=10)
    wait_for(queue, job_id, {JobState.RUNNING, *FINAL}, first)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    assert queue.get(job_id).state is JobState.RUNNING  # its lease still names the dead worker

    second = start_worker("--lease", "2")
    job = wait_for(queue, job_id, FINAL, second)
    assert job.state is JobState.DONE and job.attempts == 2
    assert len(job.result["images"]) == 4


def test_a_photo_sent_during_training_is_answered_before_the_training_ends(
    data_dir: Path, start_worker
) -> None:
    from inference.cli_train import bench_selfies

    selfies = data_dir / "selfies" / "2"
    selfies.mkdir(parents=True)
    for i, shot in enumerate(bench_selfies(4)):
        shot.save(selfies / f"{i}.png")
    queue = JobQueue(data_dir / "artbooth.sqlite3")
    photos = [f"selfies/2/{i}.png" for i in range(4)]
    train = queue.enqueue("train", {"photos": photos, "class": "man", "steps": 80}, user_id=2, priority=0)
    worker = start_worker()

    deadline = time.monotonic() + 120
    while TrainPhase.of((job := queue.get(train)).progress_text) is not TrainPhase.TRAINING:
        assert job.state is JobState.RUNNING or job.state is JobState.QUEUED, job.error_message
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.1)
    photo = queue.enqueue("stylize", {"image": "uploads/1/astronaut.jpg"}, user_id=1, priority=10)

    styled = wait_for(queue, photo, FINAL, worker)
    assert styled.state is JobState.DONE, styled.error_message
    assert queue.get(train).state is JobState.RUNNING  # answered while the LoRA was still training
    trained = wait_for(queue, train, FINAL, worker, timeout=180)
    assert trained.state is JobState.DONE, trained.error_message
    assert trained.result["yielded"] >= 1 and styled.finished_at < trained.finished_at
    assert (data_dir / trained.result["lora"]).is_file()
