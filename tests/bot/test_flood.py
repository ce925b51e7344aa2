"""A burst under Telegram's flood control, enforced by the test server (issue 12, item 2).

40 users send 5 photos each at once: every "got it", every "too many" notice and every delivered picture
must arrive, and no send may go into a chat during its ban (a 429's retry_after), neither from the sender
that got the 429 nor from any other task (replies, deliveries, chat actions).
"""

from __future__ import annotations

from PIL import Image

from jobs.queue import JobQueue
from tests.bot.conftest import InProcessBot
from tests.bot.fake_telegram import FakeTelegram, FloodLimits, TgUser

USERS = [TgUser(5000 + i, "en") for i in range(40)]


def finish_all(app: InProcessBot) -> int:
    """The worker's part: every queued stylize job done with one small picture."""
    worker = JobQueue(app.settings.db_path, worker_id="burst-worker", lease_s=600)
    finished = 0
    try:
        while (job := worker.claim(("stylize",))) is not None:
            folder = app.settings.data_dir / "results" / str(job.id)
            folder.mkdir(parents=True)
            Image.new("RGB", (64, 64), (job.id % 256, 90, 160)).save(folder / "0.jpg")
            image = {"path": f"results/{job.id}/0.jpg", "style": "vangogh"}
            assert worker.finish(job.id, {"caption": "a burst", "images": [image]})
            finished += 1
    finally:
        worker.close()
    return finished


async def test_a_burst_of_40_users_keeps_every_ban_and_drops_no_reply(
    telegram: FakeTelegram, tmp_path, photo
):
    # Telegram itself bans five chats at their first send, on top of the 1/s per chat and 30/s limits.
    telegram.limits = limits = FloodLimits(ban_on_first_send={u.id: 3 for u in USERS[:5]})
    app = await InProcessBot(telegram, tmp_path / "data", notice_interval_s=600).start()
    try:
        update_ids = [telegram.push_message(user, photo=photo) for _ in range(5) for user in USERS]
        for update_id in update_ids:
            await app.handled(update_id, timeout=180)
        assert finish_all(app) == 3 * len(USERS)  # MAX_JOBS_PER_USER: the 4th and 5th photos are refused

        def delivered() -> int:
            return len(telegram.sent("sendPhoto"))

        await telegram.await_for(lambda: delivered() == 3 * len(USERS), 180, "every picture delivered")
    finally:
        await app.stop()

    assert limits.violations == [], [(c.method, c.chat_id) for c in limits.violations]
    assert len(limits.refused) >= 5  # the bans were met, and waited out
    for user in USERS:
        replies = telegram.texts(user.id)
        assert sum(r.startswith("Got it!") for r in replies) == 3, replies
        assert sum("already have 3 photos in progress" in r for r in replies) == 1, replies
        assert len(telegram.sent("sendPhoto", chat_id=user.id)) == 3
    assert app.sql("SELECT COUNT(*) FROM deliveries WHERE state != 'sent'")[0][0] == 0
