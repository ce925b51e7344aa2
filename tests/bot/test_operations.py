"""What an operator sees: `python -m bot` as a real subprocess, its log and its worker (issue 12)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import TOKEN, FakeTelegram, TgUser
from tests.bot.processes import BotProcess

USER = TgUser(777, "en")


@pytest.fixture
def server() -> FakeTelegram:
    telegram = FakeTelegram().start()
    yield telegram
    telegram.stop()


def test_the_bot_token_never_reaches_the_log(server, tmp_path: Path):
    # A download answered with 404: aiohttp's error holds the URL /file/bot<token>/..., and the handler
    # fails (with its traceback logged) three times before the user gets the apology.
    server.downloads_missing = True
    bot = BotProcess(server, tmp_path / "data", INFERENCE="external", LOG_LEVEL="DEBUG").start()
    try:
        server.push_message(USER, photo=make_photo())
        server.wait_for(lambda: any("couldn't handle" in t for t in server.texts(USER.id)), 60, "the apology")
        bot.terminate()
    finally:
        bot.cleanup()
    log = bot.log()
    assert "404" in log and "Traceback" in log  # the failure is logged, tracebacks included...
    secret = TOKEN.split(":", 1)[1]
    assert TOKEN not in log and secret not in log  # ...but never the token
    assert "/file/bot<redacted>/" in log


def test_a_worker_without_weights_is_not_restarted_in_a_loop_and_users_hear_why(server, tmp_path: Path):
    # The default preset with no weights and no network: the worker exits with its configuration status.
    bot = BotProcess(
        server,
        tmp_path / "data",
        MODELS="sd15",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        WORKER_CONFIG_RETRY_S="300",
    ).start()
    try:
        server.wait_for(lambda: "cannot start as configured" in bot.log(), 120, "the supervisor's line")
        server.push_message(USER, photo=make_photo())
        reply = server.wait_for(lambda: server.texts(USER.id), 30, "the reply")[0]
        time.sleep(3)  # a tight loop would have restarted the worker by now
        log = bot.log()
        rows = (
            sqlite3.connect(tmp_path / "data" / "artbooth.sqlite3")
            .execute("SELECT state FROM jobs")
            .fetchall()
        )
        bot.terminate()
    finally:
        bot.cleanup()
    assert reply.startswith("Got it, but the painter isn't ready yet") and "kept in the queue" in reply
    assert rows == [("queued",)]  # kept, to be painted once the operator fixes the worker
    assert log.count("worker started") == 1 and log.count("cannot start as configured") == 1
    [line] = [ln for ln in log.splitlines() if ln.startswith("error: model_missing")]
    assert "`hf download stable-diffusion-v1-5/stable-diffusion-v1-5`" in line
    assert "Traceback" not in log
