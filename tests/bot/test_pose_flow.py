"""/pose: the wait for a reference (surviving a restart), the reference's checks, the job and its album.

In-process tests drive the handlers against the fake Bot API and play the worker with the sync queue. The
end-to-end test runs `python -m bot` with its real worker on the tiny models and a real (tiny) LoRA.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
from PIL import Image

from contract.kinds import JobKind, TrainRequest
from jobs.queue import JobQueue
from jobs.training_store import TrainingStore
from tests.bot.conftest import InProcessBot, make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.processes import BotProcess

pytestmark = pytest.mark.timeout(300)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def references() -> dict[str, bytes]:
    from skimage import data

    return {
        "person": jpeg(Image.fromarray(data.astronaut())),  # a face the detector finds
        "coffee": jpeg(Image.fromarray(data.coffee())),  # nobody in it
        "small": make_photo((200, 150)),
    }


async def say(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> int:
    update_id = telegram.push_message(user, **message)
    await app.handled(update_id)
    return update_id


def pose_jobs(app: InProcessBot, user: TgUser) -> list[dict]:
    rows = app.sql("SELECT * FROM jobs WHERE user_id = ? AND kind = 'pose' ORDER BY id", (user.id,))
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def give_lora(app: InProcessBot, telegram: FakeTelegram, user: TgUser) -> None:
    """The user has a trained model (rows and a file; no worker reads it in these tests)."""
    await say(app, telegram, user, text="/help")  # creates the user's row
    lora = app.settings.data_dir / "loras" / str(user.id) / "lora.safetensors"
    lora.parent.mkdir(parents=True, exist_ok=True)
    lora.write_bytes(b"weights")
    training = TrainingStore(app.db, app.settings.data_dir)  # also for a ServedBot, which keeps no dispatcher
    await training.set_lora(user.id, f"loras/{user.id}/lora.safetensors", "woman", "sks")


async def pose_job(app: InProcessBot, telegram: FakeTelegram, user: TgUser, reference: bytes) -> int:
    """The id of the pose job that /pose and then a reference queue for the user (given a model first)."""
    await give_lora(app, telegram, user)
    await say(app, telegram, user, text="/pose")
    update_id = await say(app, telegram, user, photo=reference)
    return app.sql("SELECT id FROM jobs WHERE dedup_key = ?", (f"tg:{update_id}",))[0]["id"]


def finish_pose(app: InProcessBot, job_id: int) -> None:
    """Play the worker: claim the pose job and finish it with four pictures."""
    worker = JobQueue(app.settings.db_path, worker_id="test-worker")
    try:
        claimed = worker.claim((JobKind.POSE.value,))
        assert claimed is not None and claimed.id == job_id
        results = app.settings.data_dir / "results" / str(job_id)
        results.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (64, 64), (i * 60, 90, 90)).save(results / f"0{i}.jpg")
        images = [{"path": f"results/{job_id}/0{i}.jpg"} for i in range(4)]
        worker.finish(job_id, {"prompt": "p", "caption": "a man <waving>", "images": images, "seed": 1})
    finally:
        worker.close()


# -- in-process -----------------------------------------------------------------------------------------
async def test_without_a_model_pose_says_how_to_get_one(app, telegram, references):
    en, ru = TgUser(1101, "en"), TgUser(1102, "ru")
    await say(app, telegram, en, text="/pose")
    assert telegram.texts(en.id)[-1].startswith("/pose paints <b>you</b> in the pose of any photo")
    assert "/train" in telegram.texts(en.id)[-1]
    await say(app, telegram, ru, photo=references["person"], caption="/pose as a knight")
    assert (
        telegram.texts(ru.id)[-1].startswith("/pose рисует <b>вас</b>")
        and "/train" in telegram.texts(ru.id)[-1]
    )
    # While the training runs: say so.
    await say(app, telegram, en, text="/train")
    request = TrainRequest(photos=("selfies/x/1.jpg", "selfies/x/2.jpg", "selfies/x/3.jpg"))
    job_id, _ = await app.queue.enqueue(JobKind.TRAIN, request.to_payload(), user_id=en.id, chat_id=en.id)
    await app.dispatcher["training"].mark_training(en.id, job_id)
    await say(app, telegram, en, text="/pose")
    # the same words as /me's: queued (how many ahead) or how far, not a made-up 0%
    assert telegram.texts(en.id)[-1].startswith(
        "Your personal model is still training (in the queue, 0 ahead)"
    )
    assert not app.sql("SELECT 1 FROM jobs WHERE kind = 'pose'")
    assert not app.sql("SELECT 1 FROM pose_waits")


async def test_pose_then_a_reference_queues_a_pose_job_and_delivers_four(app, telegram, references):
    user = TgUser(1201, "en")
    await give_lora(app, telegram, user)
    await say(app, telegram, user, text="/pose as a knight")
    assert telegram.texts(user.id)[-1].startswith(
        "Send me a <b>reference photo</b>: I'll paint you in its pose, as"
    )
    update_id = await say(app, telegram, user, photo=references["person"])
    assert telegram.texts(user.id)[-1] == "🕺 Got the reference! Painting you in its pose: as a knight…"
    (job,) = pose_jobs(app, user)
    assert job["priority"] == 10 and job["dedup_key"] == f"tg:{update_id}"
    assert job["payload"] == {
        "reference": job["payload"]["reference"],
        "scene": "as a knight",
        "lora": f"loras/{user.id}/lora.safetensors",
        "title": "as a knight",
        "class": "woman",
        "token": "sks",
        "n": 4,
    }
    assert job["payload"]["reference"].startswith(f"uploads/{user.id}/{update_id}-")
    assert (app.settings.data_dir / job["payload"]["reference"]).is_file()
    assert not app.sql("SELECT 1 FROM pose_waits")  # the wait is over: the next photo is a style request
    await say(app, telegram, user, photo=references["person"])
    assert len(pose_jobs(app, user)) == 1 and app.sql("SELECT 1 FROM jobs WHERE kind = 'stylize'")

    finish_pose(app, job["id"])
    album = await telegram.await_for(
        lambda: telegram.sent("sendMediaGroup", chat_id=user.id), 10, "the album"
    )
    media = album[0].params["media"]
    assert len(media) == 4 and media[0]["caption"] == "🕺 as a knight\n<i>a man &lt;waving&gt;</i>"


async def test_a_photo_captioned_pose_is_a_reference_and_a_faceless_one_gets_a_tip(app, telegram, references):
    user = TgUser(1301, "ru")
    await give_lora(app, telegram, user)
    await say(app, telegram, user, photo=references["coffee"], caption="/pose")
    reply = telegram.texts(user.id)[-1]
    assert reply.startswith("🕺 Образец получен! Рисую вас в его позе…")
    assert "Совет: я не вижу на этом фото человека" in reply
    (job,) = pose_jobs(app, user)
    assert job["payload"]["scene"] == "" and "title" not in job["payload"]
    await say(app, telegram, user, photo=references["person"], caption="/pose в доспехах")
    reply = telegram.texts(user.id)[-1]
    assert reply.startswith("🕺 Образец получен! Рисую вас в его позе: в доспехах…")
    assert "не вижу" not in reply and "по-английски" in reply


async def test_the_wait_survives_a_restart(telegram, tmp_path, references):
    user = TgUser(1401, "en")
    first = await InProcessBot(telegram, tmp_path / "data").start()
    try:
        await give_lora(first, telegram, user)
        await say(first, telegram, user, text="/pose")
        assert telegram.texts(user.id)[-1].startswith("Send me a <b>reference photo</b>")
    finally:
        await first.stop()
    second = await InProcessBot(telegram, tmp_path / "data").start()
    try:
        await say(second, telegram, user, photo=references["person"])
        assert telegram.texts(user.id)[-1] == "🕺 Got the reference! Painting you in its pose…"
        assert len(pose_jobs(second, user)) == 1
    finally:
        await second.stop()


async def test_what_cannot_be_a_reference_is_answered_and_the_wait_goes_on(app, telegram, references):
    en, ru = TgUser(1501, "en"), TgUser(1502, "ru")
    for user in (en, ru):
        await give_lora(app, telegram, user)
        await say(app, telegram, user, text="/pose")
    await say(app, telegram, en, sticker=True)
    assert telegram.texts(en.id)[-1].startswith("A sticker can't be a reference. Send a photo")
    await say(app, telegram, ru, sticker=True)
    assert telegram.texts(ru.id)[-1].startswith("Стикер не подойдёт как образец")
    await say(app, telegram, en, document=(b"%PDF-1.4", "pose.pdf", "application/pdf"))
    assert telegram.texts(en.id)[-1].startswith("That file isn't an image, so it can't be a reference")
    await say(app, telegram, ru, document=(b"%PDF-1.4", "pose.pdf", "application/pdf"))
    assert telegram.texts(ru.id)[-1].startswith("Этот файл — не картинка, он не подойдёт как образец")
    await say(app, telegram, en, document=(b"\x89PNG garbage", "pose.png", "image/png"))
    assert telegram.texts(en.id)[-1] == (
        "❌ I can't use this as a reference: this isn't a picture I can open. Please send a photo (JPEG, PNG "
        "or WebP).\nSend another photo of the pose you want, or /pose cancel."
    )
    await say(app, telegram, ru, photo=references["small"])
    assert telegram.texts(ru.id)[-1].startswith(
        "❌ Это фото не подойдёт как образец: оно слишком маленькое: чтобы разглядеть позу, нужно хотя бы 256"
    )
    await say(app, telegram, en, voice=True)
    assert telegram.texts(en.id)[-1].startswith("I need a photo as the reference, not a voice message")
    await say(app, telegram, en, text="hello?")
    assert telegram.texts(en.id)[-1].startswith("I'm waiting for the reference photo for /pose")
    assert not app.sql("SELECT 1 FROM jobs") and not list((app.settings.data_dir / "uploads").rglob("*.*"))
    assert len(app.sql("SELECT 1 FROM pose_waits")) == 2  # still waiting, for a usable photo
    await say(app, telegram, en, text="/pose cancel")
    assert telegram.texts(en.id)[-1].startswith("OK, no pose.")
    await say(app, telegram, en, text="/pose cancel")
    assert telegram.texts(en.id)[-1].startswith("There's no /pose waiting.")
    await say(app, telegram, en, sticker=True)  # no wait: the usual answer
    assert telegram.texts(en.id)[-1].startswith("I can only paint photos")
    await say(app, telegram, ru, photo=references["person"])
    assert len(pose_jobs(app, ru)) == 1


async def test_forget_takes_the_wait_too(app, telegram):
    user = TgUser(1601, "en")
    await give_lora(app, telegram, user)
    await say(app, telegram, user, text="/pose")
    await app.dispatcher["forgetter"].forget(user.id, 0)
    assert not app.sql("SELECT 1 FROM pose_waits")


# -- end to end: python -m bot with its worker on the tiny models -----------------------------------------
@pytest.fixture(scope="module")
def tiny_lora(tiny_models, tmp_path_factory) -> Path:
    from skimage import data

    from inference.train import TrainConfig
    from inference.train.loop import train_lora

    face = Image.fromarray(data.astronaut())
    out = tmp_path_factory.mktemp("pose-lora") / "lora.safetensors"
    config = TrainConfig(cls="man", rank=4, steps=2, warmup_steps=0, num_class_images=2, class_image_steps=2)
    cache = tmp_path_factory.mktemp("class-images")
    train_lora(tiny_models, [face, face.transpose(Image.FLIP_LEFT_RIGHT)], config, out=out, class_cache=cache)
    return out


def test_pose_end_to_end(tmp_path_factory, tiny_settings, tiny_lora, references):
    from jobs import connect, migrate

    telegram = FakeTelegram().start()
    data_dir = tmp_path_factory.mktemp("pose-e2e") / "data"
    (data_dir / "loras" / "901").mkdir(parents=True)
    (data_dir / "models").symlink_to(tiny_settings.data_dir / "models", target_is_directory=True)
    (data_dir / "loras" / "901" / "lora.safetensors").write_bytes(tiny_lora.read_bytes())
    conn = connect(data_dir / "artbooth.sqlite3")
    migrate(conn)
    conn.execute(
        "INSERT INTO users (id, chat_id, lang, created_at, lora, lora_class, lora_token) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (901, 901, "en", time.time(), "loras/901/lora.safetensors", "man", "sks"),
    )
    conn.close()
    bot = BotProcess(telegram, data_dir).start()
    user = TgUser(901, "en")
    try:
        telegram.push_message(user, text="/pose on the moon")
        telegram.wait_for(lambda: telegram.texts(user.id), 30, "the request for a reference")
        telegram.push_message(user, photo=references["person"])
        album = telegram.wait_for(lambda: telegram.sent("sendMediaGroup", chat_id=user.id), 120, "the album")
        media = album[0].params["media"]
        assert [m["type"] for m in media] == ["photo"] * 4 and media[0]["caption"].startswith(
            "🕺 on the moon\n<i>"
        )
        assert len(set(album[0].media_files())) == 4
        conn = sqlite3.connect(data_dir / "artbooth.sqlite3")
        (state, result) = conn.execute("SELECT state, result FROM jobs WHERE kind = 'pose'").fetchone()
        conn.close()
        assert state == "done" and json.loads(result)["prompt"].startswith("a photo of sks man, on the moon")
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- bot log ---\n{bot.log()[-5000:]}") from None
    finally:
        bot.cleanup()
        telegram.stop()
