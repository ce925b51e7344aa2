"""What a job handler sees of the worker that runs it: `JobContext`, and `JobStopped` to end a job early.

Its own module so that the worker and the handlers both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from contract.kinds import INTERACTIVE_PRIORITY
from inference.settings import InferenceSettings
from jobs import JobQueue
from jobs.files import LocalFiles
from jobs.models import Job


class JobRunner(Protocol):
    """The worker as a handler's context uses it."""

    settings: InferenceSettings
    queue: JobQueue
    files: LocalFiles
    models: Any
    stopping: bool

    def run_pending(self, *, min_priority: int | None = None) -> int: ...


class JobStopped(Exception):
    """Raised inside a handler (via ctx.report) when its job was cancelled or the worker is stopping."""


@dataclass
class JobContext:
    """What a handler sees: the models, where to write, and how to report progress."""

    worker: JobRunner
    job: Job
    max_batch: int | None = None
    cancelled: bool = False  # set by the heartbeat or report() when the job is no longer ours
    told_to_stop: bool = False  # report() returned False: whatever the handler does next is a stop
    touched: list[str] = field(default_factory=list)  # files fetched or written: evicted after the job

    @property
    def models(self) -> Any:
        return self.worker.models

    @property
    def data_dir(self) -> Path:
        return self.worker.settings.data_dir

    @property
    def queue(self) -> JobQueue:
        return self.worker.queue

    def fetch(self, name: str) -> Path:
        """A local path to a file of the store (an upload, a selfie, a LoRA), copied here if need be."""
        self.touched.append(name)
        return self.worker.files.fetch(name)

    def publish(self, path: Path) -> str:
        """A file this job wrote under DATA_DIR goes to the store; returns its name (relative to DATA_DIR)."""
        name = Path(path).relative_to(self.data_dir).as_posix()
        self.touched.append(name)
        self.worker.files.publish(name)
        return name

    @property
    def result_dir(self) -> Path:
        path = self.data_dir / "results" / str(self.job.id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_image(self, image: Any, name: str) -> str:
        """Write an image under results/<job id>/ atomically; returns its path relative to DATA_DIR."""
        target = self.result_dir / name
        tmp = target.with_name(f".{name}.tmp")
        image.save(tmp, format=Image.registered_extensions()[target.suffix.lower()], quality=93)
        tmp.replace(target)
        return self.publish(target)

    def report(self, fraction: float, text: str | None = None, eta_s: float | None = None) -> bool:
        """Record progress. False when the job must stop: cancelled by its user or the worker is stopping."""
        if not self.cancelled and not self.worker.stopping:
            if self.queue.progress(self.job.id, fraction, text, eta_s):
                return True
            self.cancelled = True
        self.told_to_stop = True
        return False

    def should_yield(self) -> bool:
        """Is an interactive job waiting? Long jobs ask between steps."""
        return not self.worker.stopping and self.queue.has_waiting(INTERACTIVE_PRIORITY)

    def run_waiting_interactive(self) -> int:
        """Run the interactive jobs waiting now (a long job calls this between steps)."""
        return self.worker.run_pending(min_priority=INTERACTIVE_PRIORITY)
