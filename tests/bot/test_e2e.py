"""End to end: `python -m bot` as a subprocess, its embedded worker on the tiny models, and the real aiogram
client talking HTTP to the fake Bot API server on loopback.

One bot serves the flow tests (users are distinct, so tests read only their own chats); the durability
test runs its own bot, which it kills with -9 and restarts.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import Call, FakeTelegram, TgUser
from tests.bot.processes import BotProcess, alive, workers_of

pytestmark = pytest.mark.timeout(300)

ALBUM_TIMEOUT = 120.0  # the first album waits for the worker to start and load the tiny models
ARTISTS_EN = "1. Van Gogh\n2. Banksy\n3. Robert Delaunay\n4. Kazimir Malevich"


@pytest.fixture(scope="module")
def models_dir(tiny_settings) -> Path:
    return tiny_settings.data_dir / "models"


def fresh_data_dir(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, name: str) -> Path:
    data_dir = tmp_path_factory.mktemp(name) / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    return data_dir


@pytest.fixture(scope="module")
def server():
    telegram = FakeTelegram().start()
    yield telegram
    telegram.stop()


@pytest.fixture(scope="module")
def bot(server, tmp_path_factory, models_dir):
    process = BotProcess(server, fresh_data_dir(tmp_path_factory, models_dir, "e2e")).start()
    yield process
    process.cleanup()


def albums(telegram: FakeTelegram, chat_id: int) -> list[Call]:
    return telegram.sent("sendMediaGroup", chat_id=chat_id)


def wait_albums(
    telegram: FakeTelegram, bot: BotProcess, chat_id: int, count: int, timeout: float = ALBUM_TIMEOUT
):
    try:
        telegram.wait_for(
            lambda: len(albums(telegram, chat_id)) >= count, timeout, f"{count} album(s) in chat {chat_id}"
        )
        return albums(telegram, chat_id)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- bot log ---\n{bot.log()[-4000:]}") from None


def wait_texts(telegram: FakeTelegram, chat_id: int, count: int, timeout: float = ALBUM_TIMEOUT) -> list[str]:
    return telegram.wait_for(
        lambda: len(telegram.texts(chat_id)) >= count and telegram.texts(chat_id),
        timeout,
        f"{count} message(s) in chat {chat_id}",
    )


def db(bot: BotProcess) -> sqlite3.Connection:
    conn = sqlite3.connect(bot.data_dir / "artbooth.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def test_a_photo_comes_back_as_one_album_of_four(server, bot):
    en, ru = TgUser(1001, "en"), TgUser(1002, "ru")
    photo = make_photo((384, 320))
    server.push_message(en, photo=photo)
    server.push_message(ru, document=(make_photo((300, 300), fmt="PNG"), "me.png", "image/png"))
    (album_en,) = wait_albums(server, bot, en.id, 1)
    (album_ru,) = wait_albums(server, bot, ru.id, 1)

    assert server.texts(en.id)[0].startswith("Got it!")
    assert server.texts(ru.id)[0].startswith("Принято!")
    media = album_en.params["media"]
    assert [m["type"] for m in media] == ["photo"] * 4
    pictures = album_en.media_files()
    assert all(p.startswith(b"\xff\xd8") for p in pictures) and len(set(pictures)) == 4
    caption = media[0]["caption"]
    assert caption.startswith("🖼 <i>") and caption.endswith(ARTISTS_EN)
    assert len(caption.split("<i>")[1].split("</i>")[0]) > 0  # BLIP's caption (gibberish on tiny models)
    assert album_ru.params["media"][0]["caption"].endswith(
        "1. Ван Гог\n2. Бэнкси\n3. Робер Делоне\n4. Казимир Малевич"
    )
    assert any(c.params["action"] == "upload_photo" for c in server.sent("sendChatAction", chat_id=en.id))

    def delivery_states() -> list[str]:
        with db(bot) as conn:
            query = "SELECT d.state FROM deliveries AS d JOIN jobs ON id = job_id WHERE user_id IN (?, ?)"
            return [r["state"] for r in conn.execute(query, (en.id, ru.id))]

    server.wait_for(lambda: delivery_states() == ["sent", "sent"], 10, "deliveries marked sent")


def test_style_persisted_and_one_off(server, bot):
    fan, one_off, menu = TgUser(1101, "en"), TgUser(1102, "en"), TgUser(1103, "ru")
    server.push_message(fan, text="/style vangogh")
    server.push_message(fan, photo=make_photo())
    server.push_message(one_off, photo=make_photo(), caption="/style banksy")
    server.push_message(one_off, photo=make_photo(color=(20, 200, 90)))
    server.push_message(menu, text="/style")
    server.push_message(menu, text="/style pikasso")
    server.push_message(menu, text="/style all")

    (fan_album,) = wait_albums(server, bot, fan.id, 1)
    assert fan_album.params["media"][0]["caption"].endswith("1–4. Van Gogh")
    one_off_albums = wait_albums(server, bot, one_off.id, 2)
    captions = sorted(a.params["media"][0]["caption"].rsplit("\n\n", 1)[1] for a in one_off_albums)
    assert captions == sorted(["1–4. Banksy", ARTISTS_EN])
    texts = wait_texts(server, menu.id, 3, timeout=20)
    assert texts[0].startswith("Выберите стиль") and "<code>vangogh</code> — Ван Гог" in texts[1]
    assert texts[2] == "Готово: следующие фото придут в стилях четырёх художников."
    assert (
        server.sent("sendMessage", chat_id=menu.id)[0].params["reply_markup"]["inline_keyboard"][0][0][
            "callback_data"
        ]
        == "style:all"
    )


def test_bad_inputs_get_a_message_that_says_what_to_do(server, bot):
    corrupt, small, misc = TgUser(1201, "ru"), TgUser(1202, "en"), TgUser(1203, "en")
    server.push_message(corrupt, document=(b"this is not a jpeg at all", "photo.jpg", "image/jpeg"))
    server.push_message(small, photo=make_photo((40, 40)))
    server.push_message(misc, document=(b"%PDF-1.4", "cv.pdf", "application/pdf"))
    server.push_message(misc, sticker=True)
    server.push_message(misc, photo=make_photo(), photo_size=25 * 1024 * 1024)

    corrupt_texts = wait_texts(server, corrupt.id, 2)
    assert corrupt_texts[1].startswith("Простите, не получилось нарисовать ваше фото: это не картинка")
    small_texts = wait_texts(server, small.id, 2)
    assert (
        small_texts[1]
        == "Sorry, I couldn't paint your photo: the picture is too small. Please send a larger photo."
    )
    assert wait_texts(server, misc.id, 3, timeout=20) == [
        "That file isn't an image. Send a photo, or a JPEG, PNG or WebP file.",
        "I can only paint photos — not stickers, voice messages or videos. Send me a photo, please.",
        "This file is 25.0 MB; I can take up to 20 MB. Please send a smaller picture.",
    ]
    assert not albums(server, corrupt.id) and not albums(server, small.id)


def test_photo_refused_by_telegram_goes_as_documents_and_retry_after_is_honoured(server, bot):
    user = TgUser(1301, "en")
    server.fail_next(
        "sendMediaGroup",
        {"ok": False, "error_code": 400, "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"},
    )
    server.push_message(user, photo=make_photo())
    (documents,) = wait_albums(server, bot, user.id, 1)
    assert [m["type"] for m in documents.params["media"]] == ["document"] * 4
    assert documents.params["media"][0]["caption"].endswith(ARTISTS_EN)

    server.retry_after("sendMediaGroup", 2)
    server.push_message(user, photo=make_photo(color=(10, 10, 250)))
    wait_albums(server, bot, user.id, 2)
    refused, *_ = [
        c
        for c in server.sent("sendMediaGroup", chat_id=user.id, ok=None)
        if c.response and not c.ok and c.response.get("error_code") == 429
    ]
    sent = albums(server, user.id)[1]
    assert sent.at - refused.at >= 2.0


@pytest.fixture
def own_server():
    """A Bot API server of this test's own: the module's `bot` polls `server` too, and two bots on one
    update stream would split the updates between them."""
    telegram = FakeTelegram().start()
    yield telegram
    telegram.stop()


@pytest.fixture
def slow_bot(own_server, tmp_path_factory, models_dir):
    """A bot whose albums take seconds (60 tiny steps) and whose replies are not paced: a /cancel sent right
    after three photos finds some of them still queued, although users take turns (the canceller's first
    photo runs second), the worker claims one job ahead, and a loaded CI machine slows the bot down more
    than the worker."""
    data_dir = fresh_data_dir(tmp_path_factory, models_dir, "slow")
    process = BotProcess(own_server, data_dir, STYLIZE_STEPS="60", SEND_INTERVAL_PER_CHAT_S="0").start()
    yield process
    process.cleanup()


def test_per_user_limit_and_cancel(own_server, slow_bot):
    server, bot = own_server, slow_bot
    burst, canceller = TgUser(1401, "en"), TgUser(1402, "ru")
    for _ in range(20):
        server.push_message(burst, photo=make_photo(), media_group_id="m1")
    for _ in range(3):
        server.push_message(canceller, photo=make_photo(color=(90, 90, 90)))
    server.push_message(canceller, text="/cancel")

    with_cancel = wait_texts(server, canceller.id, 4, timeout=30)
    cancelled = int(with_cancel[3].split(": ")[1].split(".")[0]) if "Отменено" in with_cancel[3] else 0
    assert cancelled >= 1, with_cancel

    def limit_notices() -> list[str]:
        return [t for t in server.texts(burst.id) if "already have 3 photos in progress" in t]

    server.wait_for(limit_notices, 30, "the burst's limit notice")  # its 20 photos are handled in turn
    with db(bot) as conn:
        burst_jobs = conn.execute("SELECT COUNT(*) FROM jobs WHERE user_id = ?", (burst.id,)).fetchone()[0]
    assert 3 <= burst_jobs < 20
    wait_albums(server, bot, burst.id, burst_jobs)
    wait_albums(server, bot, canceller.id, 3 - cancelled)
    time.sleep(1.0)
    assert len(albums(server, canceller.id)) == 3 - cancelled
    assert len(albums(server, burst.id)) == burst_jobs
    assert len(limit_notices()) == 1
    assert len(server.texts(burst.id)) == burst_jobs + 1  # one "queued" per job, one "too many" for the rest


def test_sigterm_stops_the_whole_tree(server, bot):
    worker = bot.wait_for_worker()
    took = bot.terminate(timeout=25)
    assert took < 20
    assert bot.process.returncode == 0
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker) and not workers_of(bot.data_dir)


def test_kill_9_at_any_moment_and_every_photo_is_answered_exactly_once(tmp_path_factory, models_dir):
    telegram = FakeTelegram().start()
    data_dir = fresh_data_dir(tmp_path_factory, models_dir, "kill9")
    users = [TgUser(2001, "en"), TgUser(2002, "ru"), TgUser(2003, "en")]
    photos: list[int] = []  # message ids of every photo Telegram handed to the bot

    def send_photo(user: TgUser) -> None:
        telegram.push_message(user, photo=make_photo(color=(len(photos) * 30 % 256, 100, 50)))
        photos.append(telegram.updates[-1]["message"]["message_id"])

    bots: list[BotProcess] = []

    def start_bot() -> BotProcess:
        bots.append(BotProcess(telegram, data_dir).start())
        return bots[-1]

    try:
        # 1. Killed right after getUpdates handed the photos over: before or while they are recorded.
        first = start_bot()
        telegram.wait_for(lambda: telegram.fetches, 30, "the bot polling")
        killed = threading.Event()

        def kill_soon(_ids: list[int]) -> None:
            if not killed.is_set():
                killed.set()
                threading.Timer(0.05, first.kill9).start()

        telegram.on_fetch = kill_soon
        for user in users:
            send_photo(user)
        telegram.wait_for(killed.is_set, 30, "the photos fetched")
        telegram.on_fetch = None
        first.process.wait(10)

        # 2. Killed (bot and worker) while the worker paints.
        second = start_bot()
        conn = sqlite3.connect(data_dir / "artbooth.sqlite3", timeout=30)
        telegram.wait_for(
            lambda: conn.execute("SELECT 1 FROM jobs WHERE state = 'running'").fetchone(),
            90,
            f"a job running\n{second.log()[-3000:]}",
        )
        worker = workers_of(data_dir)
        second.kill9()
        for pid in worker:
            os.kill(pid, signal.SIGKILL)
        send_photo(users[0])  # arrives while nobody is listening
        send_photo(users[1])

        # 3. Back up: every photo gets exactly one album.
        third = start_bot()
        telegram.wait_for(
            lambda: len(telegram.sent("sendMediaGroup")) >= len(photos),
            ALBUM_TIMEOUT,
            f"{len(photos)} albums\n{third.log()[-4000:]}",
        )
        time.sleep(2.0)  # and nothing more comes
        answered = Counter(
            c.params["reply_parameters"]["message_id"] for c in telegram.sent("sendMediaGroup")
        )
        assert answered == Counter(photos), answered
        conn.close()

        # 4. A worker that dies is restarted, and still paints.
        old_worker = third.wait_for_worker()
        os.kill(old_worker, signal.SIGKILL)
        telegram.wait_for(lambda: [w for w in workers_of(data_dir) if w != old_worker], 30, "a new worker")
        send_photo(users[2])
        telegram.wait_for(
            lambda: (
                len(telegram.sent("sendMediaGroup")) > len(photos) - 1
                and len(telegram.sent("sendMediaGroup")) == len(photos)
            ),
            ALBUM_TIMEOUT,
            "the last album",
        )
        assert third.terminate() < 20
        assert not workers_of(data_dir)
    finally:
        for process in bots:
            process.cleanup()
        telegram.stop()
