"""The delivery loop against the fake Bot API server: albums, failures, and Telegram's errors.

A job is finished here through the queue's own API (claim + finish/fail) with pictures written by the
test: that isolates delivery from inference. The worker-backed flow is in test_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from jobs import JobQueue
from tests.bot.conftest import InProcessBot, make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser

EN, RU = TgUser(301, "en"), TgUser(302, "ru")
CAPTION = "a woman with a hat & a <scarf>"


async def queued_job(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> dict:
    update_id = telegram.push_message(user, photo=make_photo(), **message)
    await app.handled(update_id)
    row = app.sql("SELECT * FROM jobs WHERE dedup_key = ?", (f"tg:{update_id}",))[0]
    return dict(row)


def finish(app: InProcessBot, job_id: int, *, size: tuple[int, int] = (64, 64)) -> list[bytes]:
    queue = JobQueue(app.settings.db_path, worker_id="test")
    try:
        job = queue.claim()
        assert job is not None and job.id == job_id
        images, pictures = [], []
        for i, style in enumerate(job.payload["styles"] * job.payload["variants"]):
            path = app.settings.data_dir / "results" / str(job_id) / f"{i:02d}_{style}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = make_photo(size, color=(40 * i, 90, 200))
            path.write_bytes(data)
            pictures.append(data)
            images.append({"path": path.relative_to(app.settings.data_dir).as_posix(), "style": style})
        assert queue.finish(job_id, {"caption": CAPTION, "images": images, "seconds": 0.1})
        return pictures
    finally:
        queue.close()


def fail(app: InProcessBot, job_id: int, code: str) -> None:
    queue = JobQueue(app.settings.db_path, worker_id="test")
    try:
        assert queue.claim().id == job_id
        assert queue.fail(job_id, code, "details for the log")
    finally:
        queue.close()


def delivery(app: InProcessBot, job_id: int) -> dict:
    return dict(app.sql("SELECT * FROM deliveries WHERE job_id = ?", (job_id,))[0])


async def delivered(app: InProcessBot, telegram: FakeTelegram, job_id: int, timeout: float = 15.0) -> dict:
    """Wait for the delivery's final state: 'sent' or 'gave_up'."""
    final = ("sent", "gave_up")
    await telegram.await_for(
        lambda: delivery(app, job_id)["state"] in final, timeout, f"job {job_id} delivered"
    )
    return delivery(app, job_id)


async def test_a_finished_job_comes_back_as_one_album_with_caption_and_style_names(app, telegram):
    job = await queued_job(app, telegram, EN)
    pictures = finish(app, job["id"])
    row = await delivered(app, telegram, job["id"])
    await asyncio.sleep(0.5)  # a few more delivery polls: still exactly one album
    (album,) = telegram.sent("sendMediaGroup", chat_id=EN.id)
    media = album.params["media"]
    assert [m["type"] for m in media] == ["photo"] * 4
    assert album.media_files() == pictures
    caption = media[0]["caption"]
    assert "a woman with a hat &amp; a &lt;scarf&gt;" in caption
    assert "1. Van Gogh\n2. Banksy\n3. Robert Delaunay\n4. Kazimir Malevich" in caption
    assert all("caption" not in m for m in media[1:])
    assert row["state"] == "sent" and len(json.loads(row["message_ids"])) == 4


async def test_album_replies_to_the_photo_and_speaks_russian(app, telegram):
    await app.handled(telegram.push_message(RU, text="/style vangogh"))
    update_id = telegram.push_message(RU, photo=make_photo())
    await app.handled(update_id)
    job = app.sql("SELECT id FROM jobs WHERE dedup_key = ?", (f"tg:{update_id}",))[0]
    photo_message_id = app.sql("SELECT reply_to FROM deliveries WHERE job_id = ?", (job["id"],))[0][
        "reply_to"
    ]
    finish(app, job["id"])
    await delivered(app, telegram, job["id"])
    (album,) = telegram.sent("sendMediaGroup", chat_id=RU.id)
    assert album.params["media"][0]["caption"].endswith("1–4. Ван Гог")
    assert album.params["reply_parameters"]["message_id"] == photo_message_id


@pytest.mark.parametrize(
    ("user", "code", "expected"),
    [
        (RU, "not_an_image", "Простите, не получилось нарисовать ваше фото: это не картинка"),
        (
            EN,
            "image_too_small",
            "Sorry, I couldn't paint your photo: the picture is too small. Please send a larger photo.",
        ),
        (EN, "some_new_code", "Sorry, I couldn't paint your photo: something went wrong on my side."),
    ],
)
async def test_a_failed_job_says_what_went_wrong_in_the_users_language(app, telegram, user, code, expected):
    job = await queued_job(app, telegram, user)
    fail(app, job["id"], code)
    assert (await delivered(app, telegram, job["id"]))["state"] == "sent"
    assert telegram.texts(user.id)[-1].startswith(expected)
    assert not telegram.sent("sendMediaGroup")


async def test_retry_after_is_honoured(app, telegram):
    job = await queued_job(app, telegram, EN)
    telegram.retry_after("sendMediaGroup", 2)
    finish(app, job["id"])
    await delivered(app, telegram, job["id"])
    refused, sent = telegram.sent("sendMediaGroup", ok=None)
    assert not refused.ok and sent.ok
    assert sent.at - refused.at >= 2.0
    assert len(telegram.sent("sendMediaGroup")) == 1


async def test_a_refused_photo_is_sent_as_a_document(app, telegram):
    job = await queued_job(app, telegram, EN)
    telegram.fail_next(
        "sendMediaGroup",
        {"ok": False, "error_code": 400, "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"},
    )
    pictures = finish(app, job["id"])
    assert (await delivered(app, telegram, job["id"]))["state"] == "sent"
    refused, documents = telegram.sent("sendMediaGroup", ok=None)
    assert [m["type"] for m in refused.params["media"]] == ["photo"] * 4 and not refused.ok
    assert [m["type"] for m in documents.params["media"]] == ["document"] * 4 and documents.ok
    assert documents.media_files() == pictures
    assert "Van Gogh" in documents.params["media"][0]["caption"]


@pytest.mark.parametrize("failure", ["disconnect", "502"])
async def test_network_failures_are_retried_not_dropped(app, telegram, failure):
    job = await queued_job(app, telegram, EN)
    if failure == "disconnect":
        telegram.fail_next("sendMediaGroup", disconnect=True, times=2)
    else:
        telegram.fail_next(
            "sendMediaGroup", {"ok": False, "error_code": 502, "description": "Bad Gateway"}, times=2
        )
    finish(app, job["id"])
    row = await delivered(app, telegram, job["id"], timeout=20)
    assert row["state"] == "sent" and row["attempts"] == 3
    calls = telegram.sent("sendMediaGroup", ok=None)
    assert [c.ok for c in calls] == [False, False, True]
    assert calls[2].at - calls[1].at >= 1.5  # backing off: ~1 s, then ~2 s


async def test_a_user_who_blocked_the_bot_is_given_up(app, telegram):
    job = await queued_job(app, telegram, EN)
    telegram.fail_next(
        "sendMediaGroup",
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    finish(app, job["id"])
    assert (await delivered(app, telegram, job["id"]))["state"] == "gave_up"


async def test_a_delivery_interrupted_mid_send_goes_out_on_restart(telegram, tmp_path):
    app = await InProcessBot(telegram, tmp_path / "data").start()
    try:
        job = await queued_job(app, telegram, EN)
    finally:
        await app.stop()
    finish(app, job["id"])
    # The bot died between marking the delivery 'sending' and Telegram's answer.
    conn = sqlite3.connect(app.settings.db_path)
    conn.execute("UPDATE deliveries SET state = 'sending', attempts = 1 WHERE job_id = ?", (job["id"],))
    conn.commit()
    conn.close()
    app = await InProcessBot(telegram, tmp_path / "data").start()
    try:
        assert (await delivered(app, telegram, job["id"]))["state"] == "sent"
        assert len(telegram.sent("sendMediaGroup")) == 1
    finally:
        await app.stop()


async def test_a_graceful_stop_lets_sends_under_way_finish(app, monkeypatch):
    from bot.delivery import DeliveryLoop
    from jobs.store import BotStore, DueDelivery

    store = BotStore(app.db)  # not the app's: its own delivery loop must not take our due delivery
    loop = DeliveryLoop(app.bot, store, app.queue, app.dispatcher["texts"], app.settings, stop_grace_s=5)
    due = [DueDelivery(job_id=1, attempts=0, reply_to=None, job_state="done")]
    finished = asyncio.Event()

    async def due_once(limit: int) -> list[DueDelivery]:
        return [due.pop()] if due else []

    async def slow_send(_due: DueDelivery) -> None:
        await asyncio.sleep(0.5)  # an album being uploaded
        finished.set()

    monkeypatch.setattr(store, "due_deliveries", due_once)
    monkeypatch.setattr(loop, "deliver", slow_send)
    task = asyncio.create_task(loop.run())

    async def sending() -> None:
        while not loop._in_flight:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(sending(), timeout=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert finished.is_set()
