"""Admin commands (/stats, /queue, /block, /unblock) for ADMIN_IDS, invisible to everyone else; the block."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.served import ServedBot
from tests.bot.test_delivery import delivered, finish
from tests.bot.test_pose_flow import finish_pose, pose_job

pytestmark = pytest.mark.timeout(90)

ADMIN, ADMIN_RU, USER, SPAMMER = TgUser(701, "en"), TgUser(702, "ru"), TgUser(703, "en"), TgUser(704, "en")
UNKNOWN = "I don't know that command. /help lists what I can do."


@pytest.fixture
async def app(telegram: FakeTelegram, tmp_path: Path):
    served = await ServedBot(telegram, tmp_path / "data", admin_ids=f"{ADMIN.id},{ADMIN_RU.id}").start()
    yield served
    await served.stop()


async def say(app: ServedBot, telegram: FakeTelegram, user: TgUser, **message) -> str | None:
    """Send, wait until handled; the bot's last text to the user (None when it said nothing)."""
    before = len(telegram.texts(user.id))
    await app.handled(telegram.push_message(user, **message))
    texts = telegram.texts(user.id)
    return texts[-1] if len(texts) > before else None


def jobs_of(app: ServedBot, user: TgUser) -> list[str]:
    return [r["state"] for r in app.sql("SELECT state FROM jobs WHERE user_id = ? ORDER BY id", (user.id,))]


async def test_admin_commands_work_for_admins_and_are_unknown_to_others(app, telegram):
    for command in ("/stats", "/queue", "/block 703", "/unblock 703"):
        assert await say(app, telegram, USER, text=command) == UNKNOWN
    assert not app.sql("SELECT 1 FROM blocked_users")

    menus = {c.params["scope"].get("chat_id"): c.params for c in telegram.sent("setMyCommands")}
    assert "stats" not in {c["command"] for c in menus[None]["commands"]}  # the public menu
    assert {"stats", "queue", "block", "unblock"} <= {c["command"] for c in menus[ADMIN.id]["commands"]}

    await say(app, telegram, USER, photo=make_photo())
    job = app.sql("SELECT id FROM jobs WHERE user_id = ?", (USER.id,))[0]["id"]
    queue = await say(app, telegram, ADMIN, text="/queue")
    assert queue.startswith("Jobs waiting or running: 1")
    assert f"#{job} stylize · waiting · priority 10 · user <code>{USER.id}</code>" in queue

    finish(app, job)
    await delivered(app, telegram, job)
    pose = await pose_job(app, telegram, USER, make_photo())  # /pose's four portraits are an album too
    finish_pose(app, pose)
    await delivered(app, telegram, pose)
    stats = await say(app, telegram, ADMIN, text="/stats")
    assert "Users: 2" in stats and "Albums: 2 today (UTC), 2 in all" in stats
    assert "Queue: 0 waiting, 0 running" in stats and "Failures in the last 24 h: none" in stats
    assert "• pose: p50 " in stats and "• stylize: p50 " in stats and stats.count("(1 jobs)") == 2
    assert (await say(app, telegram, ADMIN, text="/queue")) == "The queue is empty."
    stats_ru = await say(app, telegram, ADMIN_RU, text="/stats")
    assert "Пользователей: 3" in stats_ru and "Альбомов: 2 сегодня (UTC), 2 всего" in stats_ru


async def test_a_blocked_users_photo_is_not_queued(app, telegram):
    await say(app, telegram, SPAMMER, photo=make_photo())
    assert jobs_of(app, SPAMMER) == ["queued"]

    assert "Send the user's numeric id" in await say(app, telegram, ADMIN, text="/block")
    assert "cannot be blocked" in await say(app, telegram, ADMIN, text=f"/block {ADMIN_RU.id}")
    blocked = await say(app, telegram, ADMIN, text=f"/block {SPAMMER.id}")
    assert blocked.startswith(f"Blocked {SPAMMER.id}") and "Cancelled 1 waiting job(s)" in blocked
    assert jobs_of(app, SPAMMER) == ["cancelled"]

    answer = await say(app, telegram, SPAMMER, photo=make_photo())
    assert answer.startswith("Sorry, this bot isn't available to you") and "operator" in answer
    assert await say(app, telegram, SPAMMER, photo=make_photo()) is None  # one answer, not one per message
    assert await say(app, telegram, SPAMMER, text="/start") is None
    assert jobs_of(app, SPAMMER) == ["cancelled"]  # nothing queued
    assert "/forget" in answer  # their data stays theirs to delete: /forget is not blocked
    assert await say(app, telegram, SPAMMER, text="/forget") is not None
    assert app.sql("SELECT 1 FROM blocked_users WHERE user_id = ?", (SPAMMER.id,))  # the block stays

    assert "already blocked" in await say(app, telegram, ADMIN, text=f"/block {SPAMMER.id}")
    assert "Unblocked" in await say(app, telegram, ADMIN, text=f"/unblock {SPAMMER.id}")
    assert "not blocked" in await say(app, telegram, ADMIN, text=f"/unblock {SPAMMER.id}")
    await say(app, telegram, SPAMMER, photo=make_photo())
    assert jobs_of(app, SPAMMER) == ["cancelled", "queued"]
