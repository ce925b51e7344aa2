"""/metrics: the text format, counters that move with deliveries (albums of every kind), failures and Telegram's refusals, and the
workers' heartbeat rows read across processes' boundary (through the database)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from inference.beacon import WorkerBeacon
from jobs.workers import slot_name
from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.served import ServedBot, free_port, metric
from tests.bot.test_delivery import delivered, fail, finish
from tests.bot.test_pose_flow import finish_pose, pose_job

pytestmark = pytest.mark.timeout(90)

USER = TgUser(601, "en")


async def photo_job(app: ServedBot, telegram: FakeTelegram) -> int:
    update_id = telegram.push_message(USER, photo=make_photo())
    await app.handled(update_id)
    return app.sql("SELECT id FROM jobs WHERE dedup_key = ?", (f"tg:{update_id}",))[0]["id"]


async def test_metrics_serve_the_text_format_and_move_with_albums_and_failures(
    telegram: FakeTelegram, tmp_path: Path
):
    app = await ServedBot(telegram, tmp_path / "data", metrics_port=free_port()).start()
    try:
        content_type, body = await app.scrape()
        assert content_type.startswith("text/plain") and "version=" in content_type
        assert "# TYPE artbooth_albums_delivered_total counter" in body
        for kind in ("stylize", "portrait", "pose"):  # every kind that delivers an album has its series
            assert metric(body, "artbooth_albums_delivered_total", kind=kind) == 0
        assert metric(body, "artbooth_jobs_running", kind="train") == 0  # trainings running

        job = await photo_job(app, telegram)
        _, body = await app.scrape()
        assert metric(body, "artbooth_queue_depth", kind="stylize", priority="10") == 1

        telegram.retry_after("sendMediaGroup", 1)  # flood control once: waited, then sent
        finish(app, job)
        assert (await delivered(app, telegram, job))["state"] == "sent"
        _, body = await app.scrape()
        assert metric(body, "artbooth_albums_delivered_total", kind="stylize") == 1
        assert metric(body, "artbooth_queue_depth", kind="stylize", priority="10") is None
        assert metric(body, "artbooth_job_queue_wait_seconds_count", kind="stylize") == 1
        assert metric(body, "artbooth_job_run_seconds_count", kind="stylize") == 1
        assert metric(body, "artbooth_deliveries_pending") == 0
        refused = dict(method="sendMediaGroup", error="TelegramRetryAfter")
        assert metric(body, "artbooth_telegram_errors_total", **refused) == 1
        assert metric(body, "artbooth_telegram_retry_after_seconds_sum", method="sendMediaGroup") == 1

        job = await photo_job(app, telegram)
        fail(app, job, "image_too_small")
        assert (await delivered(app, telegram, job))["state"] == "sent"
        _, body = await app.scrape()
        assert metric(body, "artbooth_job_failures_total", kind="stylize", code="image_too_small") == 1
        assert metric(body, "artbooth_albums_delivered_total", kind="stylize") == 1

        pose = await pose_job(app, telegram, USER, make_photo())
        finish_pose(app, pose)
        assert (await delivered(app, telegram, pose))["state"] == "sent"
        _, body = await app.scrape()
        assert metric(body, "artbooth_albums_delivered_total", kind="pose") == 1
        assert metric(body, "artbooth_albums_delivered_total", kind="stylize") == 1
    finally:
        await app.stop()


async def test_workers_report_up_and_restarts_through_the_database(telegram: FakeTelegram, tmp_path: Path):
    app = await ServedBot(telegram, tmp_path / "data", metrics_port=free_port()).start()
    name = slot_name("cpu")
    try:
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) is None  # no worker has ever started

        beacon = WorkerBeacon(app.settings.db_path, "cpu", every_s=0.1)
        beacon.start()
        await telegram.await_for(lambda: app.sql("SELECT 1 FROM workers"), 10, "the first beat")
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) == 1
        assert metric(body, "artbooth_worker_restarts_total", worker=name) == 0
        assert metric(body, "artbooth_gpu_memory_bytes", worker=name, pool="allocated") is None  # CPU

        beacon.stop()  # a clean stop: down at once
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) == 0

        again = WorkerBeacon(app.settings.db_path, "cpu", every_s=0.1)
        again.start()
        time.sleep(0.3)
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) == 1
        assert metric(body, "artbooth_worker_restarts_total", worker=name) == 1
        again.done.set()  # a kill -9 leaves no 'stopped' mark: the row goes stale instead
        again.join()
        with sqlite3.connect(app.settings.db_path) as conn:
            conn.execute("UPDATE workers SET stopped_at = NULL")
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) == 1  # the last beat is still fresh
        with sqlite3.connect(app.settings.db_path) as conn:
            conn.execute("UPDATE workers SET seen_at = seen_at - 60")
        _, body = await app.scrape()
        assert metric(body, "artbooth_worker_up", worker=name) == 0
    finally:
        await app.stop()


async def test_a_metrics_port_in_use_stops_the_bot_with_a_clear_reason(
    telegram: FakeTelegram, tmp_path: Path
):
    import socket

    from bot.app import FatalError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = ServedBot(telegram, tmp_path / "data", metrics_port=taken.getsockname()[1])
        with pytest.raises(FatalError, match="METRICS_HOST:METRICS_PORT"):
            await app.start()
        await app.stop()
