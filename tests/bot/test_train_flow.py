"""/train → selfies → /done → progress → "ready" → /me and /portrait → /forget.

In-process tests drive the handlers against the fake Bot API and play the worker's part with the sync
queue (fast, exact). The end-to-end test runs `python -m bot` with its real worker on the tiny models.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from contract.kinds import TrainPhase
from jobs.queue import JobQueue
from tests.bot.conftest import InProcessBot
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.processes import BotProcess

pytestmark = pytest.mark.timeout(300)


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def selfies() -> dict[str, bytes]:
    """Three distinct photos of one real face, a copy of the first, one without a face, one too small."""
    from skimage import data

    face = Image.fromarray(data.astronaut())
    return {
        "a": jpeg(face),
        "b": jpeg(ImageOps.mirror(face)),
        "c": jpeg(face.resize((640, 640)).crop((60, 0, 560, 500))),
        "d": jpeg(ImageOps.mirror(face).crop((40, 20, 500, 480))),
        "copy_of_a": jpeg(face.resize((500, 500)), quality=70),
        "no_face": jpeg(Image.fromarray(data.coffee())),
        "small": jpeg(face.resize((300, 300))),
    }


async def say(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> int:
    update_id = telegram.push_message(user, **message)
    await app.handled(update_id)
    return update_id


async def tap(
    app: InProcessBot, telegram: FakeTelegram, user: TgUser, data: str, message_id: int = 1
) -> None:
    await app.handled(telegram.push_callback(user, data, message_id=message_id))


def buttons(telegram: FakeTelegram, chat_id: int) -> list[str]:
    markup = telegram.sent("sendMessage", chat_id=chat_id)[-1].params["reply_markup"]
    return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]


def everything_of(db_path: Path, user_id: int, job_ids: list[int]) -> list[tuple[str, dict]]:
    """Every row in every table that mentions the user's id, or one of their jobs."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    found = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):  # noqa: S608 — names from sqlite_master
                values = dict(row)
                text = json.dumps(values, default=str)
                if (
                    values.get("user_id") == user_id
                    or values.get("id") == user_id
                    and table == "users"
                    or values.get("job_id") in job_ids
                    or (table == "jobs" and values.get("id") in job_ids)
                    or f'"id": {user_id}' in text
                    or f"/{user_id}/" in text
                ):
                    found.append((table, values))
    finally:
        conn.close()
    return found


def files_of(data_dir: Path, user_id: int, job_ids: list[int]) -> list[Path]:
    names = {str(user_id)} | {str(j) for j in job_ids}
    return [
        p
        for kind in ("uploads", "selfies", "loras", "results")
        for p in (data_dir / kind).glob("*")
        if p.name in names
    ]


# -- in-process: the handlers, the worker played by the test ------------------------------------
async def test_collect_selfies_reject_with_reasons_then_train(app, telegram, selfies):
    user = TgUser(501, "en")
    await say(app, telegram, user, text="/train")
    intro = telegram.texts(user.id)[-1]
    assert "3–20 photos" in intro and "Who is in the photos?" in intro
    assert buttons(telegram, user.id) == [
        f"cls:{c}" for c in ("man", "woman", "boy", "girl", "person", "dog", "cat")
    ]
    await say(app, telegram, user, text="/done")
    assert telegram.texts(user.id)[-1] == "First tell me who is in the photos:"
    await tap(app, telegram, user, "cls:man")
    assert telegram.sent("editMessageText", chat_id=user.id)[-1].params["text"].startswith("Got it: a man.")

    await say(app, telegram, user, photo=selfies["a"])
    assert telegram.texts(user.id)[-1] == "✅ Photo accepted.\n1 of at least 3 — send 2 more."
    await say(app, telegram, user, photo=selfies["no_face"])
    assert (
        telegram.texts(user.id)[-1]
        == "❌ Photo not accepted: I can't find a face\n1 of at least 3 — send 2 more."
    )
    await say(app, telegram, user, text="/done")
    assert telegram.texts(user.id)[-1] == "I have 1 usable photo(s); I need at least 3. Please send 2 more."

    # An album: separate updates, one summary after the last.
    for key in ("b", "copy_of_a", "c", "small"):
        telegram.push_message(user, photo=selfies[key], media_group_id="album1")
    await telegram.await_for(lambda: "Accepted" in telegram.texts(user.id)[-1], 20, "the album's summary")
    assert telegram.texts(user.id)[-1] == (
        "Accepted 2, rejected 2.\n"
        "❌ Photo 2: the same photo as one you already sent\n"
        "❌ Photo 4: too small (I need at least 384 px on the short side)\n"
        "3 of at least 3 — send more (up to 20) or /done to start."
    )
    assert not app.sql("SELECT 1 FROM jobs WHERE kind = 'stylize'")  # selfies are not style requests
    crops = sorted((app.settings.data_dir / "selfies" / str(user.id)).glob("*.jpg"))
    assert len(crops) == 3 and all(Image.open(c).size == (512, 512) for c in crops)

    await say(app, telegram, user, text="/done")
    assert telegram.texts(user.id)[-1].startswith("🧠 Training your personal model on 3 photos")
    (job,) = app.sql("SELECT * FROM jobs WHERE user_id = ? AND kind = 'train'", (user.id,))
    payload = json.loads(job["payload"])
    assert job["priority"] == 0 and payload["class"] == "man" and payload["token"] == "sks"
    assert sorted(payload["photos"]) == sorted(f"selfies/{user.id}/{c.name}" for c in crops)

    await say(app, telegram, user, text="/train")
    assert telegram.texts(user.id)[-1].startswith("Your model is training now (0%)")
    await say(app, telegram, user, photo=selfies["d"])  # training: photos are style requests again
    assert app.sql("SELECT 1 FROM jobs WHERE user_id = ? AND kind = 'stylize'", (user.id,))
    await say(app, telegram, user, text="/cancel")  # takes the queued training too: the photos stay
    await telegram.await_for(
        lambda: (
            telegram.sent("editMessageText", chat_id=user.id)[-1]
            .params["text"]
            .startswith("⏹ Training stopped")
        ),
        10,
        "the progress message saying so",
    )
    assert (
        app.sql("SELECT state FROM training_sessions WHERE user_id = ?", (user.id,))[0]["state"]
        == "collecting"
    )
    await say(app, telegram, user, text="/train cancel")
    assert telegram.texts(user.id)[-1] == "Training cancelled. I deleted the photos you sent for it."
    assert not (app.settings.data_dir / "selfies" / str(user.id)).exists()
    assert app.sql("SELECT 1 FROM jobs WHERE user_id = ? AND kind = 'stylize'", (user.id,))


async def test_progress_ready_portraits_and_privacy(app, telegram, selfies):
    user, other = TgUser(601, "ru"), TgUser(602, "en")
    data_dir = app.settings.data_dir
    await say(app, telegram, user, text="/me on the moon")
    assert telegram.texts(user.id)[-1].startswith("Сначала мне нужно выучить ваше лицо: отправьте /train")
    await say(app, telegram, user, text="/train")
    await tap(app, telegram, user, "cls:woman")
    for key in ("a", "b", "c"):
        await say(app, telegram, user, photo=selfies[key])
    await say(app, telegram, user, text="/done")
    progress_id = telegram.sent("sendMessage", chat_id=user.id)[-1].response["message_id"]

    worker = JobQueue(app.settings.db_path, worker_id="test-worker")
    job = worker.claim(("train",))
    assert job is not None and job.user_id == user.id
    assert worker.progress(job.id, 0.5, TrainPhase.TRAINING, 90.0)

    def edits() -> list[str]:
        return [
            c.params["text"]
            for c in telegram.sent("editMessageText", chat_id=user.id)
            if c.params["message_id"] == progress_id
        ]

    await telegram.await_for(lambda: any("50%" in t for t in edits()), 10, "a progress edit")
    assert "🧠 Учу ваше лицо: 50% · осталось около 2 мин" in edits()
    telegram.retry_after("editMessageText", 1)  # flood control: waited out, not an error
    assert worker.progress(job.id, 0.75, TrainPhase.TRAINING, 30.0)
    await telegram.await_for(lambda: any("75%" in t for t in edits()), 15, "the next edit after retry_after")
    times = [c.at for c in telegram.sent("editMessageText", chat_id=user.id, ok=None)]
    assert all(b - a >= 0.9 for a, b in pairwise(times))  # a retry waits; edits are >= 3 s apart

    lora = data_dir / "loras" / str(user.id) / "lora.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"weights")
    worker.finish(job.id, {"lora": f"loras/{user.id}/lora.safetensors", "class": "woman", "token": "sks"})
    # "Ready" is a new message (Telegram notifies about those, not about edits); the progress one ends.
    ready = await telegram.await_for(
        lambda: [t for t in telegram.texts(user.id) if t.startswith("✅ Ваша")], 10, "ready"
    )
    assert len(ready) == 1 and "<code>/me on the moon</code>" in ready[0] and "/portrait" in ready[0]
    assert edits()[-1] == "🧠 Обучение: 100% — готово, см. ниже."
    assert not (data_dir / "selfies" / str(user.id)).exists()  # KEEP_SELFIES=false
    assert not app.sql("SELECT 1 FROM selfies WHERE user_id = ?", (user.id,))
    assert not app.sql("SELECT 1 FROM training_sessions WHERE user_id = ?", (user.id,))

    await say(app, telegram, user, text="/me")
    assert telegram.texts(user.id)[-1].startswith("Напишите сцену после /me")
    await say(app, telegram, user, text="/me on the moon")
    assert telegram.texts(user.id)[-1] == "🎨 Рисую вас: on the moon…"
    await say(app, telegram, user, text="/portrait")
    assert "scene:moon" in buttons(telegram, user.id) and len(buttons(telegram, user.id)) == 10
    await tap(app, telegram, user, "scene:acropolis")
    await say(app, telegram, user, text="/me в космосе")  # free Russian text: queued, with a tip
    assert telegram.texts(user.id)[-1].startswith(
        "🎨 Рисую вас: в космосе…\n\nСовет: художник лучше понимает"
    )
    await say(app, telegram, other, text="/me on the moon")  # another user: their own (missing) LoRA
    assert telegram.texts(other.id)[-1].startswith("First I need to learn your face")
    portraits = app.sql("SELECT * FROM jobs WHERE kind = 'portrait' ORDER BY id")
    assert [json.loads(j["payload"])["lora"] for j in portraits] == [f"loras/{user.id}/lora.safetensors"] * 3
    assert json.loads(portraits[1]["payload"])["scene"].startswith("at the Acropolis")
    assert all(j["priority"] == 10 and j["user_id"] == user.id for j in portraits)

    job = worker.claim(("portrait",))
    results = data_dir / "results" / str(job.id)
    results.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (64, 64), (i * 60, 100, 100)).save(results / f"0{i}.jpg")
    worker.finish(
        job.id, {"prompt": "p", "images": [{"path": f"results/{job.id}/0{i}.jpg"} for i in range(4)]}
    )
    album = await telegram.await_for(
        lambda: telegram.sent("sendMediaGroup", chat_id=user.id), 10, "the album"
    )
    media = album[0].params["media"]
    assert len(media) == 4 and media[0]["caption"] == "🧑‍🎨 on the moon"

    # /forget: a running job, queued jobs, files everywhere; the other user keeps everything.
    worker.claim(("portrait",))  # the /portrait one: running when the user forgets
    await say(app, telegram, other, photo=selfies["d"])
    (data_dir / "uploads" / str(other.id)).mkdir(parents=True, exist_ok=True)
    await say(app, telegram, user, photo=selfies["d"])
    job_ids = [r["id"] for r in app.sql("SELECT id FROM jobs WHERE user_id = ?", (user.id,))]
    assert everything_of(app.settings.db_path, user.id, job_ids) and files_of(data_dir, user.id, job_ids)
    await say(app, telegram, user, text="/forget")
    assert buttons(telegram, user.id) == ["forget:1", "forget:0"]
    telegram.push_callback(user, "forget:1")  # its own inbox row goes too: wait for the answer instead
    await telegram.await_for(
        lambda: (
            telegram.sent("editMessageText", chat_id=user.id)[-1]
            .params["text"]
            .startswith("Готово: я удалил")
        ),
        10,
        "forgotten",
    )
    assert everything_of(app.settings.db_path, user.id, job_ids) == []
    assert files_of(data_dir, user.id, job_ids) == []
    assert app.sql("SELECT 1 FROM users WHERE id = ?", (other.id,))
    assert app.sql("SELECT 1 FROM jobs WHERE user_id = ?", (other.id,))
    assert any((data_dir / "uploads" / str(other.id)).iterdir())
    worker.close()


async def test_twenty_photos_start_training_and_the_rest_get_one_message(telegram, tmp_path, selfies):
    app = await InProcessBot(telegram, tmp_path / "data").start()
    try:
        from skimage import data

        user = TgUser(701, "en")
        await say(app, telegram, user, text="/train")
        await tap(app, telegram, user, "cls:person")
        app.dispatcher["selfies"].quiet_s = 0.3
        import numpy as np

        face = Image.fromarray(data.astronaut()).resize((400, 400))
        photos = []  # 24 distinct photos of one face: on different backgrounds, at different places
        for i in range(24):
            rng = np.random.default_rng(i)
            canvas = Image.fromarray(rng.integers(0, 255, (9, 9, 3), dtype=np.uint8)).resize((640, 640))
            canvas.paste(face, (int(rng.integers(0, 240)), int(rng.integers(0, 240))))
            photos.append(jpeg(canvas))
        ids = [
            telegram.push_message(user, photo=p, media_group_id=f"g{i // 10}") for i, p in enumerate(photos)
        ]
        await app.handled(ids[-1], timeout=60)
        await telegram.await_for(
            lambda: app.sql("SELECT 1 FROM jobs WHERE kind = 'train'"), 10, "the train job"
        )
        (job,) = app.sql("SELECT payload FROM jobs WHERE kind = 'train'")
        accepted = len(json.loads(job["payload"])["photos"])
        count = app.sql("SELECT COUNT(*) AS n FROM selfies WHERE user_id = ?", (user.id,))[0]["n"]
        assert accepted == count == 20
        texts = telegram.texts(user.id)
        assert sum("That's 20 photos — starting the training." in t for t in texts) == 1
        assert sum(t.startswith("🧠 Training your personal model on 20 photos") for t in texts) == 1
        assert sum("I skipped the extra ones" in t for t in texts) == 1  # one message for the whole burst
        assert not app.sql("SELECT 1 FROM jobs WHERE kind = 'stylize'")
    finally:
        await app.stop()


# -- end to end: python -m bot with its worker on the tiny models -----------------------------
@pytest.fixture(scope="module")
def models_dir(tiny_settings) -> Path:
    return tiny_settings.data_dir / "models"


def test_train_then_me_end_to_end(tmp_path_factory, models_dir, selfies):
    telegram = FakeTelegram().start()
    data_dir = tmp_path_factory.mktemp("train-e2e") / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    bot = BotProcess(telegram, data_dir, TRAIN_STEPS="2").start()
    user = TgUser(801, "en")

    def texts() -> list[str]:
        return telegram.texts(user.id)

    def wait(predicate, timeout: float, what: str):
        try:
            return telegram.wait_for(predicate, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- bot log ---\n{bot.log()[-5000:]}") from None

    try:
        started = time.monotonic()
        telegram.push_message(user, text="/train")
        wait(lambda: texts(), 30, "the intro")
        telegram.push_callback(
            user,
            "cls:man",
            message_id=telegram.sent("sendMessage", chat_id=user.id)[-1].response["message_id"],
        )
        for n, key in enumerate(("a", "no_face", "b", "copy_of_a", "c"), 1):
            telegram.push_message(user, photo=selfies[key])
            wait(lambda n=n: len([t for t in texts() if "Photo" in t]) >= n, 30, f"the answer to photo {n}")
        answers = [t for t in texts() if "Photo" in t]
        assert answers[1].startswith("❌ Photo not accepted: I can't find a face")
        assert answers[3].startswith("❌ Photo not accepted: the same photo")
        assert answers[4].endswith("3 of at least 3 — send more (up to 20) or /done to start.")
        telegram.push_message(user, text="/train")
        telegram.push_message(user, text="/done")
        wait(lambda: any(t.startswith("🧠 Training") for t in texts()), 30, "the progress message")
        telegram.push_message(user, text="/train")
        wait(lambda: texts()[-1].startswith("Your model is training now"), 30, "/train while training")

        def final() -> str | None:  # a new message, so that Telegram notifies the user
            return next((t for t in texts() if t.startswith(("✅ Your", "❌ The training"))), None)

        wait(final, 180, "the training's end")
        assert final().startswith("✅ Your personal model is ready!"), final()
        assert (data_dir / "loras" / str(user.id) / "lora.safetensors").is_file()
        assert not (data_dir / "selfies" / str(user.id)).exists()

        telegram.push_message(user, text="/me on the moon")
        album = wait(lambda: telegram.sent("sendMediaGroup", chat_id=user.id), 120, "the portraits")
        media = album[0].params["media"]
        assert [m["type"] for m in media] == ["photo"] * 4 and media[0]["caption"] == "🧑‍🎨 on the moon"
        assert len(set(album[0].media_files())) == 4

        telegram.push_message(user, text="/forget")
        wait(lambda: texts()[-1].startswith("Delete everything"), 30, "the confirmation")
        telegram.push_callback(user, "forget:1")
        wait(
            lambda: any(
                c.params["text"].startswith("Done: I deleted")
                for c in telegram.sent("editMessageText", chat_id=user.id)
            ),
            30,
            "forgotten",
        )
        conn = sqlite3.connect(data_dir / "artbooth.sqlite3")
        job_ids = [r[0] for r in conn.execute("SELECT id FROM jobs")]
        conn.close()
        assert job_ids == []  # the only user's jobs are gone
        assert everything_of(data_dir / "artbooth.sqlite3", user.id, list(range(1, 50))) == []
        assert files_of(data_dir, user.id, list(range(1, 50))) == []
        print(f"train e2e took {time.monotonic() - started:.1f}s")
    finally:
        bot.cleanup()
        telegram.stop()


async def fill_selfies(app: InProcessBot, user: TgUser, count: int) -> None:
    """`count` accepted selfies as rows only (the worker is not run): far-apart fingerprints, no files."""
    training = app.dispatcher["training"]
    for i in range(count):
        fingerprint = int.from_bytes(bytes([i * 13 % 256]) * 8) ^ (0x5555 << (i % 48))
        await training.add_selfie(user.id, 900_000 + i, f"selfies/{user.id}/{i}.jpg", fingerprint)


async def test_the_20th_photo_replayed_after_a_failure_still_starts_the_training(app, telegram, selfies):
    user = TgUser(801, "en")
    await say(app, telegram, user, text="/train")
    await tap(app, telegram, user, "cls:person")
    await fill_selfies(app, user, 19)
    telegram.fail_next("sendMessage", {"ok": False, "error_code": 500, "description": "Internal"})
    update_id = telegram.push_message(user, photo=selfies["a"])
    await app.handled(update_id, timeout=20)  # the summary failed; the retry finds the photo kept
    assert app.sql("SELECT state FROM inbox WHERE update_id = ?", (update_id,))[0]["state"] == "done"
    (job,) = app.sql("SELECT id FROM jobs WHERE user_id = ? AND kind = 'train'", (user.id,))
    assert app.sql("SELECT 1 FROM deliveries WHERE job_id = ?", (job["id"],))
    session = app.sql("SELECT state, job_id FROM training_sessions WHERE user_id = ?", (user.id,))[0]
    assert (session["state"], session["job_id"]) == ("training", job["id"])
    assert telegram.texts(user.id)[-1].startswith("🧠 Training your personal model on 20 photos")


async def test_a_crash_before_the_train_jobs_delivery_is_mended_by_the_replay(app, telegram, selfies):
    user = TgUser(802, "en")
    await say(app, telegram, user, text="/train")
    await tap(app, telegram, user, "cls:person")
    await fill_selfies(app, user, 19)
    update_id = await say(app, telegram, user, photo=selfies["a"])
    (job,) = app.sql("SELECT id FROM jobs WHERE user_id = ? AND kind = 'train'", (user.id,))
    # As if the bot died after the job was queued, before its delivery row and the progress message.
    await app.db.execute("DELETE FROM deliveries WHERE job_id = ?", (job["id"],))
    await app.db.execute("UPDATE training_sessions SET progress_message = NULL WHERE user_id = ?", (user.id,))
    await app.db.execute("UPDATE inbox SET state = 'new' WHERE update_id = ?", (update_id,))
    await say(app, telegram, user, text="/help")  # wakes the processor
    await app.handled(update_id)
    assert app.sql("SELECT 1 FROM deliveries WHERE job_id = ?", (job["id"],))
    assert len(app.sql("SELECT 1 FROM jobs WHERE user_id = ?", (user.id,))) == 1  # not a style request
    assert app.sql("SELECT progress_message FROM training_sessions WHERE user_id = ?", (user.id,))[0][0]


async def test_a_full_session_answers_new_photos_instead_of_dropping_them(app, telegram, photo):
    user = TgUser(803, "ru")
    await say(app, telegram, user, text="/train")
    await tap(app, telegram, user, "cls:person")
    await fill_selfies(app, user, 20)  # e.g. a training with 20 photos failed: back to collecting
    await say(app, telegram, user, photo=photo)
    await say(app, telegram, user, photo=photo)
    assert telegram.texts(user.id)[-1].startswith("У меня уже 20 фото")
    assert sum("У меня уже 20 фото" in t for t in telegram.texts(user.id)) == 1  # one per burst
    assert not app.sql("SELECT 1 FROM jobs WHERE user_id = ?", (user.id,))
    assert not telegram.sent("getFile")
