"""Webhook mode: the fake Bot API posts real updates to the bot's webhook, with and without the secret.

The bot runs in-process, wired as `python -m bot` wires it; the kill -9 test is in test_e2e_ops.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.served import ServedBot, free_port

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cret-Token_42"
EN = TgUser(501, "en")


def webhook_settings(port: int) -> dict:
    return dict(webhook_url=f"http://127.0.0.1:{port}/tg/hook", webhook_secret=SECRET, webhook_port=port)


async def test_updates_reach_handlers_only_with_the_secret_and_once(telegram: FakeTelegram, tmp_path: Path):
    port = free_port()
    app = await ServedBot(telegram, tmp_path / "data", **webhook_settings(port)).start()
    try:
        (registered,) = telegram.sent("setWebhook")
        assert registered.params["url"] == f"http://127.0.0.1:{port}/tg/hook"
        assert registered.params["secret_token"] == SECRET
        assert {"message", "callback_query"} <= set(registered.params["allowed_updates"])
        assert not telegram.sent("deleteWebhook")

        start = telegram.push_message(EN, text="/start")  # Telegram posts it, with the secret
        await app.handled(start)
        assert (start, 200) in telegram.webhook_posts
        assert len(telegram.texts(EN.id)) == 1 and "Send me a photo" in telegram.texts(EN.id)[0]

        hello = {
            "update_id": 9001,
            "message": {
                "message_id": 77,
                "date": 1,
                "chat": {"id": EN.id, "type": "private"},
                "from": EN.as_json(),
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        for secret in (None, "", "wrong", SECRET + "x"):
            status = await asyncio.wrap_future(telegram.post_to_webhook(hello, secret=secret))
            assert status == 401, secret
        await asyncio.sleep(0.3)
        assert not app.sql("SELECT 1 FROM inbox WHERE update_id = 9001")
        assert len(telegram.texts(EN.id)) == 1  # no handler ran

        # The right secret: handled; the same update delivered again is recorded once, answered once.
        for _ in range(2):
            assert await asyncio.wrap_future(telegram.post_to_webhook(hello, secret=SECRET)) == 200
        await app.handled(9001)
        await asyncio.sleep(0.5)
        assert len(telegram.texts(EN.id)) == 2 and "How it works" in telegram.texts(EN.id)[1]
        assert not telegram.fetches  # webhook mode never polls
    finally:
        await app.stop()


async def test_updates_sent_while_the_bot_is_down_are_redelivered_until_it_answers(
    telegram: FakeTelegram, tmp_path: Path
):
    port = free_port()
    first = await ServedBot(telegram, tmp_path / "data", **webhook_settings(port)).start()
    await first.stop()  # the webhook stays set at Telegram: updates wait there

    update_id = telegram.push_message(EN, text="/start")
    await telegram.await_for(
        lambda: [s for u, s in telegram.webhook_posts if u == update_id and s is None], 10, "a refused post"
    )
    second = await ServedBot(telegram, tmp_path / "data", **webhook_settings(port)).start()
    try:
        await second.handled(update_id)
        posts = [status for u, status in telegram.webhook_posts if u == update_id]
        assert posts[-1] == 200 and None in posts
        assert len(telegram.texts(EN.id)) == 1
    finally:
        await second.stop()


async def test_polling_mode_removes_a_webhook_left_behind(telegram: FakeTelegram, tmp_path: Path):
    telegram.webhook = {"url": "https://old.example/hook", "secret_token": SECRET, "allowed_updates": None}
    app = await ServedBot(telegram, tmp_path / "data").start()
    try:
        assert telegram.sent("deleteWebhook") and telegram.webhook is None
        await app.handled(telegram.push_message(EN, text="/start"))
        assert "Send me a photo" in telegram.texts(EN.id)[0]
    finally:
        await app.stop()


def test_a_webhook_url_needs_a_secret_telegram_accepts(telegram: FakeTelegram, tmp_path: Path):
    from pydantic import ValidationError

    from tests.bot.conftest import bot_settings

    for secret in (None, "", "has spaces", "x" * 257):
        with pytest.raises(ValidationError, match="WEBHOOK_SECRET must be set"):
            bot_settings(telegram, tmp_path, webhook_url="https://bot.example/tg", webhook_secret=secret)
    assert bot_settings(telegram, tmp_path, webhook_secret=None).webhook_url is None  # polling needs none


async def test_a_webhook_url_telegram_refuses_stops_the_bot_with_its_reason(
    telegram: FakeTelegram, tmp_path: Path
):
    from bot.app import FatalError

    refusal = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: bad webhook: An HTTPS URL must be provided",
    }
    telegram.fail_next("setWebhook", refusal)
    app = ServedBot(telegram, tmp_path / "data", **webhook_settings(free_port()))
    with pytest.raises(FatalError, match="HTTPS URL must be provided"):
        await app.start()
    await app.stop()
