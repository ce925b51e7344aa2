"""What an operator sees: `python -m bot` as a real subprocess, its log and its worker (issue 12)."""

from __future__ import annotations

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
