"""The worker: a plain loop. Claim a job, run it, record the outcome, back off when idle.

Signal handlers only set a flag. A job in flight when SIGTERM arrives either finishes (stylize jobs take
seconds) or, for long jobs that report progress, is released back to the queue without spending an attempt.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from inference.beacon import WorkerBeacon
from inference.context import JobContext, JobStopped
from inference.gpu_memory import free_cuda_memory, is_oom, peak_memory
from inference.handlers import HANDLERS, resolve_handler
from inference.settings import InferenceSettings
from jobs import JobQueue
from jobs.db import DatabaseError
from jobs.errors import INTERNAL, OUT_OF_MEMORY, JobError
from jobs.files import open_files
from jobs.models import Job, JobState
from jobs.queue import QUEUED
from jobs.wakeup import Wakeup

log = logging.getLogger("artbooth.worker")
BATCHED_KINDS = ("stylize", "portrait", "pose")  # kinds whose handlers honour ctx.max_batch


class _Heartbeat(threading.Thread):
    """Renews the leases of the jobs in hand while a long step (one diffusion call) runs; flags a
    cancellation on the job's context. One thread for a whole batch of jobs."""

    def __init__(self, ctxs: list[JobContext], db_path: Path | str, worker_id: str, lease_s: float):
        super().__init__(daemon=True, name=f"heartbeat-{ctxs[0].job.id}")
        self.ctxs, self.db_path, self.worker_id, self.lease_s = list(ctxs), db_path, worker_id, lease_s
        self.done = threading.Event()

    def run(self) -> None:
        queue = JobQueue(self.db_path, worker_id=self.worker_id, lease_s=self.lease_s, migrate_schema=False)
        try:
            while not self.done.wait(self.lease_s / 3):
                for ctx in [c for c in self.ctxs if not c.cancelled]:
                    try:
                        ours = queue.heartbeat(ctx.job.id)
                    except DatabaseError as error:  # e.g. locked past busy_timeout: try again next beat
                        log.warning("job %s: heartbeat failed (%s), retrying", ctx.job.id, error)
                        continue
                    if not ours:
                        ctx.cancelled = True
                if all(c.cancelled for c in self.ctxs):
                    return
        finally:
            queue.close()

    def stop(self) -> None:
        self.done.set()
        self.join()


class Worker:
    def __init__(
        self,
        settings: InferenceSettings,
        *,
        models: Any = None,
        lease_s: float = 60.0,
        idle_min_s: float = 0.05,
        idle_max_s: float = 1.0,
        worker_id: str | None = None,
    ):
        self.settings = settings
        self.queue = JobQueue(settings.database, worker_id=worker_id, lease_s=lease_s)
        self.wakeup = Wakeup(settings.database, QUEUED)  # PostgreSQL: NOTIFY ends an idle wait at once
        self.files = open_files(settings)
        self.lease_s = lease_s
        self.models = models
        self.idle_min_s, self.idle_max_s = idle_min_s, idle_max_s
        self.kinds = tuple(HANDLERS)
        self.stopping = False
        self._batches = None  # the stylize batch runner, made on the first stylize job (self.batches)

    # -- lifecycle ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %s: finishing the current job, then exiting", signum)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def load(self) -> None:
        if self.models is None:
            from inference.models import load_models
            from inference.warmup import warm_up

            started = time.perf_counter()
            self.models = load_models(self.settings)
            log.info("models %s loaded in %.1fs", self.settings.models, time.perf_counter() - started)
            warm_up(self.models)  # CUDA: every shape compiled and captured before the first job

    def run_forever(self, *, exit_when_idle: bool = False) -> None:
        self.load()
        self.files.drop_copies()  # FILE_STORE=database: nothing a killed worker fetched stays on this host
        beacon = WorkerBeacon(self.settings.database, self.settings.device, models=self.models)
        beacon.start()  # the bot's /metrics: up, restarts, GPU memory (inference/beacon.py)
        log.info("worker %s ready on %s", self.queue.worker_id, self.queue.target)
        idle = self.idle_min_s
        next_sweep = 0.0
        while not self.stopping:
            if time.monotonic() >= next_sweep:
                self.sweep_expired()
                next_sweep = time.monotonic() + max(1.0, self.lease_s / 4)
            if self.run_pending():
                idle = self.idle_min_s
                continue
            if exit_when_idle:
                break
            self.wakeup.wait(idle)
            idle = min(idle * 2, self.idle_max_s)
        beacon.stop()
        self.close()
        log.info("worker %s stopped%s", self.queue.worker_id, peak_memory())

    def close(self) -> None:
        """Pictures still being written are finished, the decode processes stop, connections close."""
        if self._batches is not None:
            self._batches.close()
        self.queue.close()
        self.wakeup.close()

    def sweep_expired(self) -> None:
        requeued, failed = self.queue.requeue_expired()
        if requeued or failed:
            log.warning("expired leases: requeued %s, failed %s", requeued, failed)

    # -- jobs ---------------------------------------------------------------------------------
    def run_pending(self, *, min_priority: int | None = None) -> int:
        """Claim and run jobs until none is waiting (or we are stopping). Returns how many ran.

        Stylize jobs go to the batch runner (inference.batch_runner): several claimed at once, decoded
        ahead and painted in shared UNet batches; it hands back any other kind it claims meanwhile.
        """
        count = 0
        job = None
        while not self.stopping:
            job = job or self.queue.claim(self.kinds, min_priority=min_priority)
            if job is None:
                break
            batching = self.settings.pipeline or self.settings.claim_batch > 1
            if job.kind == "stylize" and batching and self.models is not None:
                ran, job = self.batches.run(job, min_priority)
                count += ran
                continue
            self.run_job(job)
            job = None
            count += 1
        if job is not None:  # claimed ahead, but we are stopping: give it back unspent
            self.queue.release(job.id)
        return count

    @property
    def batches(self):
        if self._batches is None:
            from inference.batch_runner import StylizeBatches

            self._batches = StylizeBatches(self)
        return self._batches

    def heartbeat(self, ctxs: list[JobContext]) -> _Heartbeat:
        beat = _Heartbeat(ctxs, self.settings.database, self.queue.worker_id, self.lease_s)
        beat.start()
        return beat

    def run_job(self, job: Job) -> None:
        ctx = JobContext(worker=self, job=job)
        heartbeat = self.heartbeat([ctx])
        started = time.perf_counter()
        try:
            result = self._run_with_oom_retry(ctx)
        except Exception as error:
            self.settle_error(ctx, error)
        else:
            self.settle_result(ctx, result, started)
        finally:
            heartbeat.stop()
            self.files.evict(ctx.touched)  # FILE_STORE=database: no user's file stays on this host

    def settle_error(self, ctx: JobContext, error: Exception, queue: JobQueue | None = None) -> None:
        """Record a job that raised: stopped, failed with its code, or crashed (a bug)."""
        queue = queue or self.queue
        job = ctx.job
        if isinstance(error, JobStopped) or ctx.told_to_stop or ctx.cancelled:
            self._stopped(ctx, queue)
        elif isinstance(error, JobError):
            log.info("job %s failed: %s: %s", job.id, error.code, error.message)
            queue.fail(job.id, error.code, error.message)
        else:  # a bug must not take the worker down: record it and go on
            log.error("job %s crashed:\n%s", job.id, "".join(traceback.format_exception(error)))
            queue.fail(job.id, INTERNAL, f"{type(error).__name__}: {error}")

    def settle_result(
        self, ctx: JobContext, result: dict[str, Any], started: float, queue: JobQueue | None = None
    ) -> None:
        """Record a job's result, unless it was cancelled or stopped meanwhile."""
        queue = queue or self.queue
        job = ctx.job
        if ctx.told_to_stop or ctx.cancelled:
            self._stopped(ctx, queue)
        elif queue.finish(job.id, result):
            log.info("job %s (%s) done in %.2fs", job.id, job.kind, time.perf_counter() - started)
        else:  # cancelled or deleted while it ran
            log.info("job %s finished but is no longer wanted", job.id)
            self._discard_results(ctx, queue)

    def _stopped(self, ctx: JobContext, queue: JobQueue | None = None) -> None:
        queue = queue or self.queue
        if self.stopping and not ctx.cancelled and queue.release(ctx.job.id):
            log.info("job %s released on shutdown", ctx.job.id)
        else:
            log.info("job %s stopped: cancelled", ctx.job.id)
        self._discard_results(ctx, queue)

    def _discard_results(self, ctx: JobContext, queue: JobQueue | None = None) -> None:
        """Pictures of a job nobody wants any more (cancelled, or its user said /forget) are not kept.

        Only then: a job whose lease lapsed may have been finished by another worker into the same folder,
        and a released job will be run again.
        """
        job = (queue or self.queue).get(ctx.job.id)
        if job is None or job.state is JobState.CANCELLED:
            self.files.delete([f"results/{ctx.job.id}"])

    def _run_with_oom_retry(self, ctx: JobContext) -> dict[str, Any]:
        handler = resolve_handler(ctx.job.kind)
        try:
            return handler(ctx, ctx.job)
        except Exception as error:
            if not is_oom(error):
                raise
            if ctx.job.kind not in BATCHED_KINDS:  # training has no batch to halve: retrying would OOM again
                free_cuda_memory()
                raise JobError(OUT_OF_MEMORY, "the GPU ran out of memory for this job") from error
            # One retry with half the batch; a second OOM fails the job with a stable code.
            log.warning("job %s: out of memory, retrying with a smaller batch", ctx.job.id)
            free_cuda_memory()
            ctx.max_batch = max(1, (ctx.max_batch or _batch_size(ctx.job)) // 2)
            try:
                return handler(ctx, ctx.job)
            except Exception as again:
                if is_oom(again):
                    free_cuda_memory()
                    raise JobError(OUT_OF_MEMORY, "the GPU ran out of memory for this job") from again
                raise


def _batch_size(job: Job) -> int:
    styles = job.payload.get("styles") or [None] * 4
    return max(1, len(styles) * int(job.payload.get("variants", 1)))
