"""Fast mode in the bot: /settings remembered across a restart, and the burst rule marking later jobs fast.

In-process (no worker): jobs stay queued, which is what the expected wait is made of. The albums of a
burst, answered exactly once by a real worker, are in the end-to-end test at the bottom.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.bot.conftest import InProcessBot, make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.processes import BotProcess

EN, RU = TgUser(301, "en"), TgUser(302, "ru")


async def say(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> None:
    await app.handled(telegram.push_message(user, **message))


def payloads(app: InProcessBot) -> list[dict]:
    return [json.loads(r["payload"]) for r in app.sql("SELECT payload FROM jobs ORDER BY id")]


async def test_the_users_choice_survives_a_restart(telegram, tmp_path):
    data_dir = tmp_path / "data"
    app = await InProcessBot(telegram, data_dir).start()
    try:
        await say(app, telegram, RU, text="/settings")
        menu = telegram.sent("sendMessage", chat_id=RU.id)[-1]
        assert "Сейчас: качество" in menu.params["text"]
        buttons = [b["callback_data"] for row in menu.params["reply_markup"]["inline_keyboard"] for b in row]
        assert len(buttons) == 2
        await app.handled(telegram.push_callback(RU, buttons[1]))  # ⚡ Быстро
        edited = telegram.sent("editMessageText", chat_id=RU.id)[-1].params["text"]
        assert edited.startswith("Готово: картины будут быстрыми")
        await say(app, telegram, EN, text="/settings fast")
        await say(app, telegram, EN, text="/settings quality")
        await say(app, telegram, EN, text="/settings turbo")
        assert telegram.texts(EN.id)[-3].startswith("Done: your pictures come as quick versions")
        assert telegram.texts(EN.id)[-2].startswith("Done: your pictures are painted in full quality")
        assert "/settings fast" in telegram.texts(EN.id)[-1]
    finally:
        await app.stop()

    app = await InProcessBot(telegram, data_dir).start()  # a restart: only the database carries over
    try:
        await say(app, telegram, RU, text="/settings")
        assert "Сейчас: быстро" in telegram.texts(RU.id)[-1]
        await say(app, telegram, RU, photo=make_photo())
        await say(app, telegram, EN, photo=make_photo())
        assert [p.get("fast") for p in payloads(app)] == [True, None]
        assert "⚡" not in telegram.texts(RU.id)[-1]  # their own choice: no "busy" note
    finally:
        await app.stop()


@pytest.fixture
async def busy_app(telegram, tmp_path):
    # 3 s: with no album timed yet (2 s each, jobs/wait.py), the third waiting album passes it
    app = await InProcessBot(telegram, tmp_path / "data", fast_mode_wait_s=3.0).start()
    yield app
    await app.stop()


async def test_a_burst_sends_later_albums_fast_and_says_why(busy_app, telegram):
    users = [TgUser(400 + i, "en" if i % 2 else "ru") for i in range(4)]
    for user in users:
        await say(busy_app, telegram, user, photo=make_photo())
    assert [p.get("fast") for p in payloads(busy_app)] == [None, None, True, True]
    assert "busy right now" not in telegram.texts(users[1].id)[-1]
    assert "busy right now, so you'll get a quick version" in telegram.texts(users[3].id)[-1]
    assert "много работы, поэтому будет быстрая версия" in telegram.texts(users[2].id)[-1]

    with sqlite3.connect(busy_app.settings.db_path) as conn:  # the queue drained: back to normal
        conn.execute("UPDATE jobs SET state = 'cancelled'")
    await say(busy_app, telegram, users[0], photo=make_photo())
    assert payloads(busy_app)[-1].get("fast") is None


async def test_threshold_zero_switches_the_rule_off(telegram, tmp_path):
    app = await InProcessBot(telegram, tmp_path / "data", fast_mode_wait_s=0).start()
    try:
        for i in range(4):
            await say(app, telegram, TgUser(500 + i, "en"), photo=make_photo())
        assert [p.get("fast") for p in payloads(app)] == [None] * 4
    finally:
        await app.stop()


@pytest.mark.timeout(300)
def test_every_album_of_a_burst_is_answered_once_and_marked(tmp_path, tiny_settings):
    """A real bot and worker on the tiny models: six photos at once with FAST_MODE_WAIT_S=3."""
    server = FakeTelegram().start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_settings.data_dir / "models", target_is_directory=True)
    bot = BotProcess(server, data_dir, FAST_MODE_WAIT_S="3").start()
    try:
        users = [TgUser(600 + i, "en") for i in range(3)]
        for _ in range(2):
            for user in users:
                server.push_message(user, photo=make_photo())

        def albums() -> list:
            return [c for u in users for c in server.sent("sendMediaGroup", chat_id=u.id)]

        server.wait_for(lambda: len(albums()) >= 6, 240, f"six albums\n{bot.log()[-3000:]}")
        bot.terminate()
        assert len(albums()) == 6 and all(
            len(server.sent("sendMediaGroup", chat_id=u.id)) == 2 for u in users
        )
        with sqlite3.connect(data_dir / "artbooth.sqlite3") as conn:
            rows = conn.execute("SELECT payload, result, state FROM jobs ORDER BY id").fetchall()
        fast = [json.loads(p).get("fast") is True for p, _, _ in rows]
        assert all(state == "done" for _, _, state in rows) and any(fast) and not all(fast)
        assert [json.loads(r)["fast"] for _, r, _ in rows] == fast  # the worker ran what was asked
        marked = sorted(c.params["media"][0]["caption"].endswith("⚡ quick version") for c in albums())
        assert marked == sorted(fast)
    finally:
        bot.cleanup()
        server.stop()
