"""Handler-level tests: the bot's poller, inbox and handlers in-process against the fake Bot API server.

No worker runs here: jobs stay queued, which is what the limits, /status and /cancel tests need.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.bot.conftest import InProcessBot, make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser

EN, RU = TgUser(101, "en"), TgUser(202, "ru")


async def say(app: InProcessBot, telegram: FakeTelegram, user: TgUser, **message) -> int:
    update_id = telegram.push_message(user, **message)
    await app.handled(update_id)
    return update_id


def jobs_of(app: InProcessBot, user: TgUser) -> list[dict]:
    rows = app.sql("SELECT * FROM jobs WHERE user_id = ? ORDER BY id", (user.id,))
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def test_start_and_help_speak_the_users_language(app, telegram):
    await say(app, telegram, EN, text="/start")
    await say(app, telegram, RU, text="/start")
    await say(app, telegram, RU, text="/help")
    (start_en,) = telegram.texts(EN.id)
    start_ru, help_ru = telegram.texts(RU.id)
    assert "Send me a photo" in start_en and "Van Gogh" in start_en and "Kazimir Malevich" in start_en
    assert "Пришлите фото" in start_ru and "Ван Гог" in start_ru and "Казимир Малевич" in start_ru
    assert "Как это работает" in help_ru and "до 3 фото" in help_ru and "20 МБ" in help_ru
    assert app.sql("SELECT lang FROM users WHERE id = ?", (RU.id,))[0]["lang"] == "ru"


async def test_lang_keyboard_and_argument_persist_the_choice(app, telegram):
    await say(app, telegram, EN, text="/lang")
    menu = telegram.sent("sendMessage", chat_id=EN.id)[-1]
    buttons = [b["callback_data"] for row in menu.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["lang:ru", "lang:en"]

    await app.handled(telegram.push_callback(EN, "lang:ru"))
    assert telegram.sent("answerCallbackQuery")
    assert telegram.sent("editMessageText", chat_id=EN.id)[-1].params["text"] == "Язык: русский."
    # Telegram still says "en", but the user chose: the choice sticks.
    await say(app, telegram, EN, text="/start")
    assert "Пришлите фото" in telegram.texts(EN.id)[-1]

    await say(app, telegram, EN, text="/lang en")
    await say(app, telegram, EN, text="hello")
    assert telegram.texts(EN.id)[-2:] == [
        "Language: English.",
        "Send me a photo and I'll paint it. /help explains how.",
    ]


async def test_style_command_in_all_its_forms(app, telegram, photo):
    await say(app, telegram, EN, text="/style")
    menu = telegram.sent("sendMessage", chat_id=EN.id)[-1]
    keyboard = menu.params["reply_markup"]["inline_keyboard"]
    assert keyboard[0] == [{"text": "✓ 🎨 All four artists", "callback_data": "style:all"}]
    assert {b["callback_data"] for row in keyboard[1:] for b in row} >= {
        "style:vangogh",
        "style:banksy",
        "style:panda",
    }

    await say(app, telegram, EN, text="/style vangogh")
    assert "four <b>Van Gogh</b> variants" in telegram.texts(EN.id)[-1]
    assert app.sql("SELECT style FROM users WHERE id = ?", (EN.id,))[0]["style"] == "vangogh"
    await say(app, telegram, EN, photo=photo)
    assert jobs_of(app, EN)[-1]["payload"]["styles"] == ["vangogh"]
    assert jobs_of(app, EN)[-1]["payload"]["variants"] == 4
    assert "as four <b>Van Gogh</b> variants" in telegram.texts(EN.id)[-1]

    await say(app, telegram, EN, text="/style all")
    assert app.sql("SELECT style FROM users WHERE id = ?", (EN.id,))[0]["style"] is None
    await say(app, telegram, EN, photo=photo)
    assert jobs_of(app, EN)[-1]["payload"]["styles"] == ["vangogh", "banksy", "delaunay", "malevich"]
    assert jobs_of(app, EN)[-1]["payload"]["variants"] == 1

    await say(app, telegram, EN, text="/style picasso")
    unknown = telegram.texts(EN.id)[-1]
    assert (
        "picasso" in unknown
        and "<code>vangogh</code> — Van Gogh" in unknown
        and "<code>panda</code>" in unknown
    )

    await say(app, telegram, RU, text="/style nope")
    assert "<code>malevich</code> — Казимир Малевич" in telegram.texts(RU.id)[-1]


async def test_style_button_is_answered_at_once_and_persists(app, telegram):
    await app.handled(telegram.push_callback(RU, "style:banksy"))
    methods = [c.method for c in telegram.sent() if c.chat_id in (RU.id, None)]
    assert methods.index("answerCallbackQuery") < methods.index("editMessageText")
    assert "Бэнкси" in telegram.sent("editMessageText")[-1].params["text"]
    assert app.sql("SELECT style FROM users WHERE id = ?", (RU.id,))[0]["style"] == "banksy"

    await app.handled(telegram.push_callback(RU, "style:all"))
    assert app.sql("SELECT style FROM users WHERE id = ?", (RU.id,))[0]["style"] is None
    await app.handled(telegram.push_callback(RU, "garbage"))
    assert telegram.sent("answerCallbackQuery")[-1].params["text"].startswith("Эта кнопка")


async def test_caption_style_is_a_one_off(app, telegram, photo):
    await say(app, telegram, EN, photo=photo, caption="/style banksy")
    await say(app, telegram, EN, photo=photo)
    first, second = jobs_of(app, EN)
    assert (first["payload"]["styles"], first["payload"]["variants"]) == (["banksy"], 4)
    assert second["payload"]["styles"] == ["vangogh", "banksy", "delaunay", "malevich"]
    assert app.sql("SELECT style FROM users WHERE id = ?", (EN.id,))[0]["style"] is None

    await say(app, telegram, EN, photo=photo, caption="/style cubism")
    assert len(jobs_of(app, EN)) == 2
    assert "cubism" in telegram.texts(EN.id)[-1]


async def test_an_albums_caption_style_applies_to_all_its_photos(app, telegram, photo):
    await say(app, telegram, EN, photo=photo, caption="/style malevich", media_group_id="album-1")
    await say(app, telegram, EN, photo=photo, media_group_id="album-1")
    await say(app, telegram, EN, photo=photo, media_group_id="album-2")
    assert [j["payload"]["styles"] for j in jobs_of(app, EN)] == [
        ["malevich"],
        ["malevich"],
        ["vangogh", "banksy", "delaunay", "malevich"],
    ]


async def test_an_album_with_an_unknown_caption_style_gets_one_answer(app, telegram, photo):
    await say(app, telegram, EN, photo=photo, caption="/style picasso", media_group_id="album-3")
    for _ in range(4):
        await say(app, telegram, EN, photo=photo, media_group_id="album-3")
    answers = telegram.texts(EN.id)
    assert len(answers) == 1 and "picasso" in answers[0] and "vangogh" in answers[0]
    assert jobs_of(app, EN) == []


async def test_photo_is_downloaded_and_queued_with_a_delivery(app, telegram, photo):
    update_id = await say(app, telegram, EN, photo=photo)
    (job,) = jobs_of(app, EN)
    assert job["kind"] == "stylize" and job["priority"] == 10 and job["dedup_key"] == f"tg:{update_id}"
    assert job["chat_id"] == EN.id and job["state"] == "queued"
    upload = app.settings.data_dir / job["payload"]["image"]
    assert upload.read_bytes() == photo  # the largest size, not the thumbnail
    assert job["payload"]["image"].startswith(f"uploads/{EN.id}/")
    assert (
        app.sql("SELECT state, reply_to FROM deliveries WHERE job_id = ?", (job["id"],))[0]["state"]
        == "pending"
    )
    assert telegram.texts(EN.id) == ["Got it! Painting your photo in four artists' styles now…"]
    assert telegram.sent("sendChatAction", chat_id=EN.id)[0].params["action"] == "upload_photo"

    # Others waiting: the reply says how many are ahead.
    await say(app, telegram, RU, photo=photo)
    assert "перед ним: 1" in telegram.texts(RU.id)[-1]


async def test_image_documents_are_accepted_and_other_files_are_not(app, telegram):
    png = make_photo(fmt="PNG")
    await say(app, telegram, EN, document=(png, "me.png", "image/png"))
    (job,) = jobs_of(app, EN)
    assert job["payload"]["image"].endswith(".png")
    assert (app.settings.data_dir / job["payload"]["image"]).read_bytes() == png

    await say(app, telegram, EN, document=(b"%PDF-1.4", "cv.pdf", "application/pdf"))
    assert telegram.texts(EN.id)[-1] == "That file isn't an image. Send a photo, or a JPEG, PNG or WebP file."
    assert len(jobs_of(app, EN)) == 1

    # A client that calls every file application/octet-stream: the name says it is a picture.
    jpeg = make_photo()
    await say(app, telegram, EN, document=(jpeg, "IMG_0001.JPG", "application/octet-stream"))
    assert len(jobs_of(app, EN)) == 2 and jobs_of(app, EN)[-1]["payload"]["image"].endswith(".jpg")
    await say(app, telegram, EN, document=(b"\x00\x01", "notes.bin", "application/octet-stream"))
    assert len(jobs_of(app, EN)) == 2


async def test_everything_else_gets_a_short_helpful_answer(app, telegram):
    await say(app, telegram, RU, text="привет")
    await say(app, telegram, RU, text="/frobnicate")
    await say(app, telegram, RU, sticker=True)
    await say(app, telegram, EN, voice=True)
    await say(app, telegram, EN, video=True)
    assert telegram.texts(RU.id) == [
        "Пришлите мне фото, и я его нарисую. /help расскажет подробнее.",
        "Я не знаю такой команды. /help — что я умею.",
        "Я рисую только по фото — стикеры, голосовые и видео не подойдут. Пришлите, пожалуйста, фото.",
    ]
    assert (
        telegram.texts(EN.id)
        == ["I can only paint photos — not stickers, voice messages or videos. Send me a photo, please."] * 2
    )


async def test_files_over_20_mb_get_a_clear_message(app, telegram, photo):
    await say(app, telegram, EN, photo=photo, photo_size=25 * 1024 * 1024)
    await say(app, telegram, RU, document=(photo, "big.jpg", "image/jpeg"), document_size=30 * 1024 * 1024)
    assert telegram.texts(EN.id) == [
        "This file is 25.0 MB; I can take up to 20 MB. Please send a smaller picture."
    ]
    assert "30.0 МБ" in telegram.texts(RU.id)[0]
    assert not telegram.sent("getFile")
    assert not app.sql("SELECT * FROM jobs")


async def test_an_edited_photo_or_command_is_answered(app, telegram, photo):
    await say(app, telegram, EN, photo=photo, edited=True)
    await say(app, telegram, RU, text="/style banksy", edited=True)
    (to_en,) = telegram.sent("sendMessage", chat_id=EN.id)
    assert (
        to_en.params["text"].startswith("I saw the edit") and "send the photo again" in to_en.params["text"]
    )
    assert "reply_parameters" in to_en.params  # it answers the edited message
    assert telegram.texts(RU.id) == [
        "Я вижу правку, но отвечаю только на новые сообщения: отправьте его заново новым сообщением."
    ]
    assert not app.sql("SELECT * FROM jobs")  # an edit is not a second request
    assert app.sql("SELECT style FROM users WHERE id = ?", (RU.id,))[0]["style"] is None


async def test_a_too_big_file_whose_size_the_update_did_not_carry_gets_the_limit(app, telegram, photo):
    # No file_size in the update: only getFile tells that the file is too big.
    big = (photo, "big.png", "image/png")
    await say(app, telegram, EN, document=big, document_size=30 * 1024 * 1024, announce_size=False)
    await say(app, telegram, RU, document=big, document_size=30 * 1024 * 1024, announce_size=False)
    assert telegram.texts(EN.id) == [
        "This file is larger than I can take (up to 20 MB). Please send a smaller picture."
    ]
    assert telegram.texts(RU.id) == [
        "Этот файл больше, чем я принимаю (до 20 МБ). Пришлите картинку поменьше."
    ]
    assert len(telegram.sent("getFile", ok=False)) == 2
    assert not app.sql("SELECT * FROM jobs")


async def test_a_burst_of_50_photos_floods_neither_the_queue_nor_the_chat(app, telegram, photo):
    update_ids = [telegram.push_message(EN, photo=photo, media_group_id="burst") for _ in range(50)]
    for update_id in update_ids:
        await app.handled(update_id, timeout=30)
    assert len(jobs_of(app, EN)) == 3
    replies = telegram.texts(EN.id)
    assert len(replies) == 4
    assert sum("in the queue" in r or "now…" in r for r in replies) == 3
    assert sum("already have 3 photos in progress" in r for r in replies) == 1
    assert len(telegram.sent("getFile")) == 3  # refused photos are not even downloaded


async def test_global_queue_cap(telegram, tmp_path, photo):
    app = await InProcessBot(telegram, tmp_path / "data", max_queue=2).start()
    try:
        await say(app, telegram, EN, photo=photo)
        await say(app, telegram, EN, photo=photo)
        await say(app, telegram, RU, photo=photo)
        assert not jobs_of(app, RU)
        assert telegram.texts(RU.id) == [
            "Сейчас очень много работы, очередь заполнена. Попробуйте, пожалуйста, через несколько минут."
        ]
    finally:
        await app.stop()


async def test_status_and_cancel(app, telegram, photo):
    await say(app, telegram, EN, text="/status")
    assert telegram.texts(EN.id)[-1] == "You have no photos in progress.\n\nQueue: 0 waiting, 0 in progress."
    await say(app, telegram, EN, photo=photo)
    await say(app, telegram, EN, photo=photo)
    first, second = jobs_of(app, EN)
    await say(app, telegram, EN, text="/status")
    assert telegram.texts(EN.id)[-1] == (
        f"Your photos:\n• #{first['id']}: waiting, 0 ahead\n• #{second['id']}: waiting, 1 ahead\n\n"
        "Queue: 2 waiting, 0 in progress."
    )
    await say(app, telegram, EN, text="/cancel")
    assert telegram.texts(EN.id)[-1] == "Cancelled 2 waiting photo(s)."
    assert [j["state"] for j in jobs_of(app, EN)] == ["cancelled", "cancelled"]
    await say(app, telegram, EN, text="/cancel")
    assert telegram.texts(EN.id)[-1] == "You have no waiting photos to cancel."
    # The delivery loop closes cancelled jobs' deliveries without a message.
    await telegram.await_for(
        lambda: all(r["state"] == "sent" for r in app.sql("SELECT state FROM deliveries"))
    )
    assert not telegram.sent("sendMediaGroup")
    # Cancelled jobs no longer count against the limit.
    await say(app, telegram, EN, photo=photo)
    assert jobs_of(app, EN)[-1]["state"] == "queued"


async def test_updates_are_recorded_before_they_are_confirmed(app, telegram, photo):
    # At every getUpdates call, the updates its offset confirms must already be in the inbox.
    unrecorded_at_confirmation: list[int] = []

    def check(offset: int | None) -> None:
        if offset is None:
            return
        recorded = {r["update_id"] for r in app.sql("SELECT update_id FROM inbox")}
        handed = telegram.handed_over()
        unrecorded_at_confirmation.extend(uid for uid in handed if uid < offset and uid not in recorded)

    telegram.on_poll = check
    update_ids = [telegram.push_message(EN, photo=photo), telegram.push_message(RU, text="/start")]
    update_ids += [telegram.push_message(RU, text=f"hi {i}") for i in range(5)]
    for update_id in update_ids:
        await app.handled(update_id)
    await telegram.await_for(lambda: telegram.confirmed_below > update_ids[-1], what="offsets confirmed")
    telegram.on_poll = None
    assert telegram.handed_over() >= set(update_ids)
    assert unrecorded_at_confirmation == []


async def test_an_update_aiogram_cannot_read_is_set_aside_and_the_rest_are_handled(app, telegram):
    # A poll without `question` (an older self-hosted Bot API server), and a message without `chat`,
    # in the same getUpdates batch as readable ones.
    poll = {"id": "p1", "options": [], "total_voter_count": 0, "is_closed": False, "is_anonymous": True}
    poll.update(type="regular", allows_multiple_answers=False)
    bad_poll = telegram.push_raw({"poll": poll})
    bad_message = telegram.push_raw(
        {"message": {"message_id": 999, "date": 1, "from": EN.as_json(), "text": "/help"}}
    )
    good = telegram.push_message(RU, text="/help")
    for update_id in (bad_poll, bad_message, good):
        await app.handled(update_id)
    assert "Как это работает" in telegram.texts(RU.id)[0]
    states = {r["update_id"]: r["state"] for r in app.sql("SELECT update_id, state FROM inbox")}
    assert states == {bad_poll: "failed", bad_message: "failed", good: "done"}
    # Tried once, not retried with back-off; the sender whose JSON names them hears about it.
    assert app.sql("SELECT attempts FROM inbox WHERE update_id = ?", (bad_message,))[0]["attempts"] == 1
    await telegram.await_for(lambda: telegram.texts(EN.id), 5, "the apology")
    assert telegram.texts(EN.id) == [
        "Sorry, I couldn't handle that message: something broke on my side. Please try again later."
    ]
    # Confirmed to Telegram, so the next getUpdates moves on.
    await telegram.await_for(lambda: telegram.confirmed_below > good, what="the offset past them")
    later = telegram.push_message(EN, text="/start")
    await app.handled(later)


async def test_a_replayed_update_queues_nothing_twice(app, telegram, photo):
    update_id = await say(app, telegram, EN, photo=photo)
    # As if the bot died after recording the job but before marking the update handled.
    await app.db.execute("UPDATE inbox SET state = 'new', attempts = 1 WHERE update_id = ?", (update_id,))
    await say(app, telegram, EN, text="/help")  # wakes the processor
    await app.handled(update_id)
    assert len(jobs_of(app, EN)) == 1
    assert sum("Got it" in t for t in telegram.texts(EN.id)) == 1
    assert app.sql("SELECT attempts FROM inbox WHERE update_id = ?", (update_id,))[0]["attempts"] == 2


async def test_handled_updates_are_pruned_but_the_offset_survives(app, telegram):
    last = await say(app, telegram, EN, text="/help")
    await app.db.execute("UPDATE inbox SET handled_at = handled_at - 10 * 86400")
    assert await app.store.prune_inbox() == 0  # the newest row stays: it carries the offset
    older = await say(app, telegram, EN, text="/start")
    await app.db.execute("UPDATE inbox SET handled_at = handled_at - 10 * 86400")
    assert await app.store.prune_inbox() == 1
    assert [r["update_id"] for r in app.sql("SELECT update_id FROM inbox")] == [older]
    assert await app.store.next_offset() == older + 1 and older > last


async def test_an_update_that_keeps_failing_ends_with_a_message_not_silence(app, telegram, photo):
    # getFile keeps answering 500: the photo handler fails, is retried with back-off, then set aside.
    telegram.fail_next(
        "getFile", {"ok": False, "error_code": 500, "description": "Internal Server Error"}, times=3
    )
    update_id = telegram.push_message(RU, photo=photo)
    # The apology is sent after the row is marked: wait for the message itself, not for the row.
    apology = "Простите, не получилось обработать это сообщение"
    await telegram.await_for(
        lambda: any(t.startswith(apology) for t in telegram.texts(RU.id)), 30, "the apology"
    )
    assert (
        app.sql("SELECT state, attempts FROM inbox WHERE update_id = ?", (update_id,))[0]["state"] == "failed"
    )
    assert jobs_of(app, RU) == []
    assert telegram.texts(RU.id)[-1].startswith(apology)


def bad_request(description: str) -> dict:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


async def test_a_stale_callback_query_still_does_what_the_button_asked(app, telegram, photo):
    # After a crash replay the query is too old to answer: the confirmed /forget must still happen.
    await say(app, telegram, EN, photo=photo)
    stale = bad_request("query is too old and response timeout expired or query ID is invalid")
    telegram.fail_next("answerCallbackQuery", stale, times=3)
    telegram.push_callback(EN, "forget:1")
    await telegram.await_for(lambda: telegram.sent("editMessageText", chat_id=EN.id), 10, "the confirmation")
    assert telegram.sent("editMessageText", chat_id=EN.id)[-1].params["text"].startswith("Done: I deleted")
    assert not app.sql("SELECT 1 FROM jobs WHERE user_id = ?", (EN.id,))
    assert not app.sql("SELECT 1 FROM users WHERE id = ?", (EN.id,))
    assert not app.sql("SELECT 1 FROM inbox WHERE user_id = ?", (EN.id,))  # the /forget update too
    assert not any("couldn't handle" in t for t in telegram.texts(EN.id))


async def test_an_edit_telegram_refuses_is_not_an_error(app, telegram):
    # A double tap: the text is already there.
    telegram.fail_next(
        "editMessageText", bad_request("message is not modified: specified new message content")
    )
    update_id = telegram.push_callback(EN, "style:banksy")
    await app.handled(update_id)
    assert app.sql("SELECT state FROM inbox WHERE update_id = ?", (update_id,))[0]["state"] == "done"
    assert telegram.texts(EN.id) == []

    # An old message: the confirmation comes as a new one.
    telegram.fail_next("editMessageText", bad_request("message can't be edited"))
    update_id = telegram.push_callback(EN, "style:vangogh")
    await app.handled(update_id)
    assert app.sql("SELECT state FROM inbox WHERE update_id = ?", (update_id,))[0]["state"] == "done"
    assert "four <b>Van Gogh</b> variants" in telegram.texts(EN.id)[-1]


async def test_what_the_user_typed_is_escaped_in_html_replies(app, telegram, photo):
    await say(app, telegram, EN, text="/style <b>x")
    assert "“&lt;b&gt;x”" in telegram.texts(EN.id)[-1]
    await say(app, telegram, EN, photo=photo, caption="/style a&<i>")
    assert "“a&amp;&lt;i&gt;”" in telegram.texts(EN.id)[-1]


async def test_an_albums_caption_style_survives_a_crash_mid_album(app, telegram, photo):
    first = await say(app, telegram, EN, photo=photo, caption="/style malevich", media_group_id="album-9")
    # The bot dies: what it remembered of the album is gone, the rest of the album is replayed.
    app.dispatcher["intake"]._album_styles.clear()
    await app.db.execute("UPDATE inbox SET state = 'new' WHERE update_id = ?", (first,))
    await say(app, telegram, EN, photo=photo, media_group_id="album-9")
    assert [j["payload"]["styles"] for j in jobs_of(app, EN)] == [["malevich"], ["malevich"]]


@pytest.mark.parametrize("method", ["record_update", "pending_updates", "due_deliveries", "running_chats"])
async def test_a_failed_iteration_does_not_end_a_loop(app, telegram, monkeypatch, method):
    import sqlite3 as sqlite

    from bot.chat_action import show_progress

    real, calls = getattr(app.store, method), []

    async def fails_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sqlite.OperationalError("database is locked")
        return await real(*args, **kwargs)

    monkeypatch.setattr(app.store, method, fails_once)
    app.tasks.append(asyncio.create_task(show_progress(app.bot, app.store, 0.1)))
    await say(app, telegram, EN, text="/start")  # recorded and handled all the same
    await telegram.await_for(lambda: len(calls) >= 2, 10, f"{method} called again")
    assert not any(task.done() for task in app.tasks)
