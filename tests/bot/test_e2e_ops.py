"""End to end in webhook mode: `python -m bot` with its embedded worker on the tiny models, the fake Bot API
posting updates to the bot's webhook, and a kill -9 right after the bot answered 200."""

from __future__ import annotations

import sqlite3
import threading
import urllib.request

import pytest

from jobs.workers import slot_name
from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.processes import BotProcess
from tests.bot.served import free_port, metric
from tests.bot.test_e2e import ALBUM_TIMEOUT, fresh_data_dir, models_dir  # noqa: F401 — a fixture

pytestmark = pytest.mark.timeout(300)

SECRET = "e2e-webhook-secret"


def test_kill_9_after_the_webhook_answered_200_still_paints_the_album(tmp_path_factory, models_dir):  # noqa: F811
    telegram = FakeTelegram().start()
    data_dir = fresh_data_dir(tmp_path_factory, models_dir, "webhook")
    port, metrics_port = free_port(), free_port()
    env = dict(
        WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT=str(port),
        METRICS_PORT=str(metrics_port),
    )
    user = TgUser(2101, "en")
    bots: list[BotProcess] = []
    try:
        first = BotProcess(telegram, data_dir, **env).start()
        bots.append(first)
        telegram.wait_for(lambda: telegram.sent("setWebhook"), 60, f"setWebhook\n{first.log()[-3000:]}")

        killed = threading.Event()

        def kill_at_once(_update_id: int) -> None:  # in the fake's thread, as soon as the 200 is in
            if not killed.is_set():
                first.kill9()
                killed.set()

        telegram.on_webhook_answered = kill_at_once
        update_id = telegram.push_message(user, photo=make_photo())
        photo_message = telegram.updates[-1]["message"]["message_id"]
        telegram.wait_for(killed.is_set, 30, "the webhook answered")
        telegram.on_webhook_answered = None
        assert [s for u, s in telegram.webhook_posts if u == update_id] == [200]  # Telegram will not resend
        with sqlite3.connect(data_dir / "artbooth.sqlite3", timeout=30) as conn:
            assert conn.execute("SELECT 1 FROM inbox WHERE update_id = ?", (update_id,)).fetchone()
            assert not conn.execute("SELECT 1 FROM jobs WHERE state IN ('running', 'done')").fetchone()

        second = BotProcess(telegram, data_dir, **env).start()
        bots.append(second)
        try:
            telegram.wait_for(
                lambda: telegram.sent("sendMediaGroup", chat_id=user.id), ALBUM_TIMEOUT, "the album"
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- bot log ---\n{second.log()[-4000:]}") from None
        (album,) = telegram.sent("sendMediaGroup", chat_id=user.id)
        assert album.params["reply_parameters"]["message_id"] == photo_message
        assert not telegram.fetches  # never polled

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            body = response.read().decode()
        assert metric(body, "artbooth_albums_delivered_total", kind="stylize") == 1
        assert metric(body, "artbooth_worker_up", worker=slot_name("cpu")) == 1  # the worker's own process
        assert second.terminate() < 20
    finally:
        for process in bots:
            process.cleanup()
        telegram.stop()
