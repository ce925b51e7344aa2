"""What users are told about the queue and a training under way (issue 12, items 9, 11, 12).

In-process bot, no worker: a "running" training is a train job claimed with the worker's own queue API
and left running, with the progress the worker would have reported.
"""

from __future__ import annotations

import re

from contract.kinds import INTERACTIVE_PRIORITY, TRAIN_PRIORITY, JobKind, TrainPhase, TrainRequest
from jobs.queue import JobQueue
from tests.bot.conftest import InProcessBot
from tests.bot.fake_telegram import FakeTelegram, TgUser

TRAINER, LATE, A, B = TgUser(11, "en"), TgUser(12, "en"), TgUser(13, "en"), TgUser(14, "ru")


async def say(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> str:
    """Send a message and return the bot's (last) answer to it."""
    before = len(telegram.texts(user.id))
    await app.handled(telegram.push_message(user, **message))
    await telegram.await_for(lambda: len(telegram.texts(user.id)) > before, 5, "the answer")
    return telegram.texts(user.id)[-1]


async def start_training(app: InProcessBot, user: TgUser, *, run: bool) -> int:
    """A training session of `user` whose job is queued, or claimed by a worker (and left running)."""
    request = TrainRequest(photos=("selfies/x/1.jpg", "selfies/x/2.jpg", "selfies/x/3.jpg"))
    job_id, _ = await app.queue.enqueue(
        JobKind.TRAIN, request.to_payload(), user_id=user.id, chat_id=user.id, priority=TRAIN_PRIORITY
    )
    await app.store.add_delivery(job_id, None)  # its end is delivered like an album (bot/train_progress.py)
    training = app.dispatcher["training"]
    await app.store.upsert_user(user.id, user.id, user.lang or "en")
    await training.open_session(user.id, user.id)
    await training.mark_training(user.id, job_id)
    sent = await app.bot.send_message(user.id, "🧠 progress")
    await training.set_progress_message(user.id, sent.message_id)
    if run:
        worker = JobQueue(app.settings.db_path, worker_id="test-worker", lease_s=600)
        try:
            assert worker.claim(("train",)).id == job_id
            assert worker.progress(job_id, 0.45, TrainPhase.TRAINING, eta_s=150.0)
        finally:
            worker.close()
    return job_id


async def test_every_message_counts_the_jobs_ahead_the_same_way(app, telegram, photo):
    await start_training(app, TRAINER, run=True)
    # A running training yields to photos: nothing is ahead of the first photo.
    assert (await say(app, telegram, A, photo=photo)).startswith("Got it! Painting your photo")
    status_a = await say(app, telegram, A, text="/status")
    assert re.search(r"#\d+: waiting, 0 ahead", status_a), status_a

    reply_b = await say(app, telegram, B, photo=photo)
    assert "перед ним: 1" in reply_b
    assert "перед ним: 1" in await say(app, telegram, B, text="/status")

    # A training queued now waits for both photos and for the training that runs: 3, said in its message.
    await start_training(app, LATE, run=False)
    await telegram.await_for(
        lambda: any(
            "3 job(s) ahead" in c.params["text"] for c in telegram.sent("editMessageText", chat_id=LATE.id)
        ),
        10,
        "the queued training's count",
    )
    assert app.sql("SELECT COUNT(*) FROM jobs WHERE priority = ?", (INTERACTIVE_PRIORITY,))[0][0] == 2


async def test_status_shows_a_training_as_training_with_progress_and_eta(app, telegram, photo):
    job_id = await start_training(app, TRAINER, run=True)
    status = await say(app, telegram, TRAINER, text="/status")
    assert f"#{job_id}: training your personal model — 45% · about 2 min left" in status
    assert "being painted" not in status and "1 in progress" in status

    late = await start_training(app, LATE, run=False)
    await say(app, telegram, A, photo=photo)
    status = await say(app, telegram, LATE, text="/status")
    assert f"#{late}: training your personal model — in the queue, 2 ahead" in status


async def test_me_and_portrait_during_a_training_say_it_is_training(app, telegram):
    await start_training(app, TRAINER, run=True)
    for command in ("/me on the moon", "/portrait"):
        answer = await say(app, telegram, TRAINER, text=command)
        assert answer.startswith("I'm learning your face right now (45% · about 2 min left)"), answer
        assert "/train" not in answer
    await start_training(app, B, run=False)
    assert "(в очереди, перед ним: 1)" in await say(app, telegram, B, text="/me на луне")
    assert not app.sql("SELECT 1 FROM jobs WHERE kind = 'portrait'")
    # Without a training, the way to start one.
    assert "send /train" in await say(app, telegram, A, text="/portrait")


async def test_the_end_of_a_training_is_a_new_message_success_or_failure(app, telegram):
    worker = JobQueue(app.settings.db_path, worker_id="test-worker", lease_s=600)
    try:
        for user, ok in ((TRAINER, False), (A, True)):
            job_id = await start_training(app, user, run=False)
            assert worker.claim(("train",)).id == job_id
            if ok:
                lora = app.settings.data_dir / "loras" / str(user.id) / "lora.safetensors"
                lora.parent.mkdir(parents=True)
                lora.write_bytes(b"weights")
                worker.finish(
                    job_id, {"lora": f"loras/{user.id}/lora.safetensors", "class": "man", "token": "sks"}
                )
            else:
                worker.fail(job_id, "out_of_memory", "CUDA out of memory")
    finally:
        worker.close()
    try:
        failed = await telegram.await_for(lambda: telegram.texts(TRAINER.id)[1:], 30, "the failure")
    except AssertionError as error:  # rare on a loaded machine: say what the bot's side looked like
        tasks = [
            (t.get_coro().__qualname__, t.done() and (t.cancelled() or t.exception())) for t in app.tasks
        ]
        deliveries = [tuple(r) for r in app.sql("SELECT * FROM deliveries")]
        jobs = [tuple(r) for r in app.sql("SELECT id, state, error_code FROM jobs")]
        raise AssertionError(f"{error}; tasks {tasks}; deliveries {deliveries}; jobs {jobs}") from error
    assert failed[0].startswith("❌ The training didn't work: the painter ran out of memory")
    ready = await telegram.await_for(lambda: telegram.texts(A.id)[1:], 30, "ready")
    assert ready[0].startswith("✅ Your personal model is ready!")
    endings = [c.params["text"] for c in telegram.sent("editMessageText")]
    assert "🧠 Training stopped — see below." in endings and "🧠 Training: 100% — done, see below." in endings
