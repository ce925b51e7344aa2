"""Stylize jobs at the GPU's pace: claimed several at a time, decoded ahead, painted in shared batches,
written behind.

Why not the plain claim-run-record loop: on an H200 a job's CPU work (read and decode the upload, fit it to
its bucket, JPEG-encode and write four pictures, two database writes) took 0.4 s per album while the GPU
waited (issue 9). Here, while the GPU paints one batch, a thread claims and decodes the next jobs and
another writes the last batch's pictures, so the GPU goes from one batch straight to the next. Up to
ARTBOOTH_CLAIM_BATCH jobs are claimed at once (one statement); those whose photos share the first one's
bucket (and steps, mode and schedule) are painted with it in one `stylize_batch` call, up to ARTBOOTH_BATCH_PHOTOS
photos, each with its own seeds (the same pictures as alone), and the rest go straight back to the queue
unspent (`unclaim`). So a batch is only ever what is painted together: no job waits, claimed, behind
another bucket's batch, which would make job times uneven (p95 against p50). Normal albums default to one
photo and one claim (opt-in: in the H200's four-aspect drain batches never formed and their shapes doubled
the start's warm-up); fast albums to ARTBOOTH_FAST_BATCH_PHOTOS=2 among ARTBOOTH_FAST_CLAIM_BATCH=8, since
they come in bursts and at three steps the caption and fixed costs weigh as much as the UNet.

The photos themselves are decoded and fitted in ARTBOOTH_DECODE_PROCESSES processes (on CUDA; see
`_decode_pool`), so Pillow and the painting thread do not take turns at the GIL.

A job of another kind claimed while looking ahead is handed back to the worker's loop, so portraits and
training are not passed over. A failed batch is retried job by job through the worker's own path (with
its OOM retry at half the batch), so one bad job never fails another user's.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from contract.kinds import STYLIZE_STEPS
from inference.buckets import decode_and_fit
from inference.context import JobContext
from inference.gpu_memory import free_cuda_memory, is_oom
from inference.stylize_job import PreparedStylize, StylizeHead, prepared_from, read_stylize, write_stylize
from jobs import JobQueue
from jobs.errors import JobError
from jobs.models import Job

log = logging.getLogger("artbooth.worker")


@dataclass
class _Ahead:
    """What the look-ahead thread claimed: stylize jobs ready to paint, then maybe one other job."""

    ready: list[PreparedStylize]
    other: Job | None = None
    failed: int = 0  # claimed, but failed before painting (a bad photo)


class StylizeBatches:
    def __init__(self, worker):
        self.worker = worker
        self.settings = worker.settings
        threads = self.settings.pipeline  # ARTBOOTH_PIPELINE=0: everything on the worker's own thread
        self.ahead_pool = ThreadPoolExecutor(1, "stylize-ahead") if threads else None
        self.writer = ThreadPoolExecutor(1, "stylize-writer") if threads else None
        self.local = threading.local()  # one queue connection per thread (sqlite3 objects stay put)
        processes = self.settings.decode_processes
        if processes is None:
            models = worker.models
            processes = 2 if models is not None and models.device.type == "cuda" else 0
        self.decoders = _decode_pool(processes) if threads else None

    def close(self) -> None:
        for pool in (self.ahead_pool, self.writer, self.decoders):
            if pool is not None:
                pool.shutdown(wait=True)

    def _decode_all(self, heads: list[StylizeHead]) -> list[Future]:
        """Each head's photo decoded and fitted: all at once in the decode processes, or here, one by one."""
        resolution = self.worker.models.resolution
        calls = [(decode_and_fit, h.data, resolution, h.key is not None) for h in heads]
        if self.decoders is not None:
            return [self.decoders.submit(*call) for call in calls]
        return [_done(*call) for call in calls]

    def _queue(self) -> JobQueue:
        if threading.current_thread() is threading.main_thread():
            return self.worker.queue
        if getattr(self.local, "queue", None) is None:
            w = self.worker
            self.local.queue = JobQueue(
                w.settings.database, worker_id=w.queue.worker_id, lease_s=w.lease_s, migrate_schema=False
            )
        return self.local.queue

    # -- the loop -------------------------------------------------------------------------------
    def run(self, first: Job, min_priority: int | None) -> tuple[int, Job | None]:
        """Run `first` and the stylize jobs that follow it; returns (jobs run, a claimed job of another
        kind for the worker to run next, or None)."""
        ahead = self._claim_more([first], min_priority)
        count = ahead.failed
        while ahead.ready and not self.worker.stopping:
            batch = ahead.ready
            # Look ahead while the GPU paints this batch (unless a job of another kind is already next).
            future = self._submit(self._claim_next, min_priority) if ahead.other is None else None
            self._paint_all(batch)
            ahead = future.result() if future is not None else _Ahead([], ahead.other)
            count += len(batch) + ahead.failed
        self._release([p.ctx for p in ahead.ready])  # stopping: claimed ahead but not painted
        self._wait_for_writes()
        return count, ahead.other

    def _submit(self, fn, *args) -> Future:
        if self.ahead_pool is None:
            return _done(fn, *args)
        return self.ahead_pool.submit(fn, *args)

    def _claim_next(self, min_priority: int | None) -> _Ahead:
        """On the look-ahead thread: the next job of any kind; if it is a stylize job, more of them."""
        job = self._queue().claim(self.worker.kinds, min_priority=min_priority)
        if job is None:
            return _Ahead([])
        if job.kind != "stylize":
            return _Ahead([], job)
        return self._claim_more([job], min_priority)

    def _claim_more(self, jobs: list[Job], min_priority: int | None) -> _Ahead:
        """Claim more stylize jobs; keep those that can share `jobs[0]`'s batch (same bucket, read from each
        photo's header), give the others back unspent, and decode only the kept photos."""
        fast = bool(jobs[0].payload.get("fast"))  # fast albums batch by default (settings.fast_batch_photos)
        limit = self.settings.fast_batch_photos if fast else self.settings.batch_photos
        want = (self.settings.fast_claim_batch if fast else self.settings.claim_batch) - len(jobs)
        if want > 0:
            jobs = jobs + self._queue().claim_many(want, ("stylize",), min_priority=jobs[0].priority)
        kept: list[StylizeHead] = []
        failed = 0
        for job in jobs:
            ctx = JobContext(worker=self.worker, job=job)
            try:
                head = read_stylize(ctx, job)
            except Exception as error:  # a bad upload fails its own job, here and now
                self.worker.settle_error(ctx, error, self._queue())
                failed += 1
                continue
            fits = head.key is not None and kept and head.key == kept[0].key and len(kept) < limit
            if not kept or fits:
                kept.append(head)
            else:  # another bucket (or buckets off): back to the queue for the next look-ahead
                self._queue().unclaim(job.id)
        ready: list[PreparedStylize] = []
        for head, photo in zip(kept, self._decode_all(kept), strict=True):
            try:
                ready.append(prepared_from(head, photo.result()))
            except Exception as error:  # not a photo after all, or too big: its own job fails
                self.worker.settle_error(head.ctx, error, self._queue())
                failed += 1
        return _Ahead(ready, failed=failed)

    # -- painting -------------------------------------------------------------------------------
    def _paint_all(self, batch: list[PreparedStylize]) -> None:
        heartbeat = self.worker.heartbeat([p.ctx for p in batch])
        try:
            self._paint(batch)  # one bucket and schedule, at most (ARTBOOTH_FAST_)BATCH_PHOTOS photos
        finally:
            heartbeat.stop()

    def _paint(self, group: list[PreparedStylize]) -> None:
        from inference.stylize import stylize_batch

        group = [p for p in group if not p.ctx.cancelled]  # cancelled before its turn: not painted
        if not group:
            return
        started = time.perf_counter()
        first = group[0]
        try:
            results = stylize_batch(
                self.worker.models,
                [p.item for p in group],
                steps=first.request.steps or STYLIZE_STEPS,
                mode=first.request.mode,
                fast=bool(first.request.fast),  # in the key: a batch never mixes schedules
            )
        except Exception as error:
            if len(group) == 1 and not _is_oom(error):
                self.worker.settle_error(first.ctx, error)
                return
            log.warning("batch of jobs %s failed (%s): running them one by one", _ids(group), error)
            free_cuda_memory()
            for prepared in group:
                self.worker.run_job(prepared.ctx.job)
            return
        for prepared, result in zip(group, results, strict=True):
            self._write(prepared, result, started)

    def _write(self, prepared: PreparedStylize, result: Any, started: float) -> None:
        if self.writer is None:
            self._settle(prepared, result, started)
        else:
            self.writer.submit(self._settle, prepared, result, started)

    def _settle(self, prepared: PreparedStylize, result: Any, started: float) -> None:
        """On the writer thread: JPEGs under results/<job id>/, then the job's row."""
        queue = self._queue()
        try:
            if prepared.ctx.cancelled:  # cancelled while it was painted: nothing to write
                self.worker.settle_result(prepared.ctx, {}, started, queue)
                return
            try:
                record = write_stylize(prepared, result)
            except Exception as error:
                self.worker.settle_error(prepared.ctx, error, queue)
            else:
                self.worker.settle_result(prepared.ctx, record, started, queue)
        finally:
            self.worker.files.evict(prepared.ctx.touched)  # FILE_STORE=database: nothing stays here

    def _wait_for_writes(self) -> None:
        """Every picture of the batches run so far is written and recorded (before the loop goes idle)."""
        if self.writer is not None:
            self.writer.submit(lambda: None).result()

    def _release(self, ctxs: list[JobContext]) -> None:
        for ctx in ctxs:
            self.worker.queue.release(ctx.job.id)


def _ids(group: list[PreparedStylize]) -> str:
    return ", ".join(str(p.ctx.job.id) for p in group)


def _is_oom(error: BaseException) -> bool:
    return is_oom(error) and not isinstance(error, JobError)


def _decode_pool(processes: int) -> ProcessPoolExecutor | None:
    """Processes that decode and fit the next photos: on a thread, decoding a 1600-px JPEG and resizing it
    took 240 ms instead of 35 on the H200 host, every step of Pillow waiting for the GIL that the painting
    thread holds between kernel launches, and the painting thread in turn waited for it (a batch of two fast
    albums took 0.40 s instead of about 0.2). Spawned (no fork of a process that holds CUDA), torch-free."""
    if processes < 1:
        return None
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def _done(fn, *args) -> Future:
    """`fn(*args)` run now, as a finished Future (its exception kept for `result()` to raise)."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as error:
        future.set_exception(error)
    return future
