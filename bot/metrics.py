"""Prometheus metrics (prometheus-client) on METRICS_PORT: what happens in the bot, and what the database says.

Two sources, one registry of our own (not the library's global one, so two bots in one test process
do not collide):

- Events the bot sees are counted as they happen: albums delivered, failures by error code, each job's
  queue wait and run time (observed when its answer is delivered), Telegram API errors and the
  `retry_after` Telegram asked for (one session middleware sees every request, retries included).
- State is read from the database at each scrape (`DatabaseCollector`): queue depth by kind and
  priority, running jobs by kind (trainings running: kind="train"), deliveries waiting to go out, and
  the workers' heartbeat rows (up, restarts, GPU memory). Workers live in other processes, possibly on
  other hosts; they write their row (jobs/workers.py) and the bot's one endpoint shows them all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.listener import Listener
from contract.kinds import ALBUM_KINDS, JobKind
from jobs.models import Job, JobState
from jobs.ops_store import OpsStore, Snapshot

log = logging.getLogger("artbooth.bot.metrics")

# A stylize job takes seconds on a GPU, a training minutes; a queue wait can be anything.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
RETRY_AFTER_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 3600)


class BotMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.albums = Counter("artbooth_albums_delivered", "Albums delivered to users", ["kind"], registry=r)
        self.failures = Counter(
            "artbooth_job_failures",
            "Failed jobs told to their users, by error code",
            ["kind", "code"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "artbooth_job_queue_wait_seconds",
            "From queued to claimed by a worker",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "artbooth_job_run_seconds",
            "From claimed to finished",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.telegram_errors = Counter(
            "artbooth_telegram_errors", "Bot API calls that failed", ["method", "error"], registry=r
        )
        self.retry_after = Histogram(
            "artbooth_telegram_retry_after_seconds",
            "The waits Telegram's flood control asked for",
            ["method"],
            buckets=RETRY_AFTER_BUCKETS,
            registry=r,
        )
        for kind in ALBUM_KINDS:  # the series exist (at 0) before the first album
            self.albums.labels(kind)
        self.database = DatabaseCollector()
        r.register(self.database)

    def job_delivered(self, job: Job) -> None:
        """Called once per job whose answer (album or failure message) Telegram accepted."""
        if job.state == JobState.DONE and job.kind in ALBUM_KINDS:
            self.albums.labels(job.kind).inc()
        elif job.state == JobState.FAILED:
            self.failures.labels(job.kind, job.error_code or "internal").inc()
        if job.state in (JobState.DONE, JobState.FAILED) and job.started_at is not None:
            self.queue_wait.labels(job.kind).observe(max(0.0, job.started_at - job.created_at))
            if job.finished_at is not None:
                self.run_time.labels(job.kind).observe(max(0.0, job.finished_at - job.started_at))

    def session_middleware(self) -> TelegramMetricsMiddleware:
        return TelegramMetricsMiddleware(self)

    async def exposition(self, ops: OpsStore) -> bytes:
        self.database.snapshot = await ops.snapshot()  # read asynchronously; collect() then only formats
        return generate_latest(self.registry)


class TelegramMetricsMiddleware(BaseRequestMiddleware):
    """Registered innermost (after the pacing FloodControl middleware), so each refused attempt counts."""

    def __init__(self, metrics: BotMetrics):
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramAPIError as error:
            name = method.__api_method__
            self.metrics.telegram_errors.labels(name, type(error).__name__).inc()
            if isinstance(error, TelegramRetryAfter):
                self.metrics.retry_after.labels(name).observe(error.retry_after)
            raise


class DatabaseCollector:
    """Formats the last snapshot; `BotMetrics.exposition` takes a fresh one before each scrape."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        depth = GaugeMetricFamily(
            "artbooth_queue_depth", "Jobs waiting, by kind and priority", labels=["kind", "priority"]
        )
        for (kind, priority), count in sorted(snap.queue_depth.items()):
            depth.add_metric([kind, str(priority)], count)
        yield depth
        running = GaugeMetricFamily(
            "artbooth_jobs_running", "Jobs being run by a worker, by kind", labels=["kind"]
        )
        for kind in sorted(set(JobKind) | set(snap.running)):
            running.add_metric([str(kind)], snap.running.get(kind, 0))
        yield running
        yield GaugeMetricFamily(
            "artbooth_deliveries_pending",
            "Finished jobs whose answer is not sent yet",
            value=snap.deliveries_pending,
        )
        yield from _worker_metrics(snap)


def _worker_metrics(snap: Snapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("artbooth_worker_up", "1 while the worker's heartbeat is fresh", labels=["worker"])
    restarts = CounterMetricFamily(
        "artbooth_worker_restarts", "Worker starts after the first", labels=["worker"]
    )
    memory = GaugeMetricFamily(
        "artbooth_gpu_memory_bytes",
        "GPU memory held by the worker's torch allocator",
        labels=["worker", "pool"],
    )
    for worker in snap.workers:
        alive = worker.up(snap.at)
        up.add_metric([worker.name], 1.0 if alive else 0.0)
        restarts.add_metric([worker.name], worker.starts - 1)
        if alive and worker.gpu_allocated_bytes is not None:
            memory.add_metric([worker.name, "allocated"], worker.gpu_allocated_bytes)
            memory.add_metric([worker.name, "reserved"], worker.gpu_reserved_bytes or 0)
    yield from (up, restarts, memory)


class MetricsServer(Listener):
    """GET /metrics on METRICS_HOST:METRICS_PORT, in the bot's event loop (the database reads are async)."""

    def __init__(self, metrics: BotMetrics, ops: OpsStore, host: str, port: int):
        super().__init__()
        self.metrics, self.ops, self.host, self.port = metrics, ops, host, port

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.handle)
        return app

    async def start(self) -> None:
        await self.listen(self.host, self.port)
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)

    async def handle(self, _request: web.Request) -> web.Response:
        body = await self.metrics.exposition(self.ops)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
