"""/forget leaves no trace of the user in the database's files (issue 12, item 4).

SQLite keeps a deleted row's bytes in the page until the page is reused, and in the WAL file until a
checkpoint: without `secure_delete` and a `wal_checkpoint(TRUNCATE)` after the deletes, the user's id,
name, captions and Telegram file ids could be read back from artbooth.sqlite3(-wal) after /forget.
"""

from __future__ import annotations

from pathlib import Path

from tests.bot.fake_telegram import TgUser

FORGOTTEN = TgUser(987654321, "en", first_name="Zebulon")
OTHER = TgUser(123123, "en", first_name="Ottilie")


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("artbooth.sqlite3*")))


async def test_forget_leaves_nothing_of_the_user_in_the_database_files(app, telegram, photo):
    await app.handled(telegram.push_message(OTHER, text="/start"))
    await app.handled(telegram.push_message(FORGOTTEN, text="/start"))
    await app.handled(telegram.push_message(FORGOTTEN, photo=photo, caption="Quixotic caption"))
    file_ids = ["file-1", "uniq1", "file-2", "uniq2"]  # the photo: its small and large sizes
    traces = [str(FORGOTTEN.id).encode(), b"Zebulon", b"Quixotic", *(f.encode() for f in file_ids)]
    assert all(t in database_bytes(app.settings.data_dir) for t in traces)  # the test can see them

    await app.handled(telegram.push_message(FORGOTTEN, text="/forget"))
    telegram.push_callback(FORGOTTEN, "forget:1")
    await telegram.await_for(
        lambda: telegram.sent("editMessageText", chat_id=FORGOTTEN.id), 10, "the /forget confirmation"
    )
    await app.handled(telegram.push_message(OTHER, text="/help"))  # the database goes on being written

    left = database_bytes(app.settings.data_dir)
    assert [t for t in traces if t in left] == []
    assert b"Ottilie" in left  # the other user is still there
    assert not any((app.settings.data_dir / "uploads").glob(f"{FORGOTTEN.id}/*"))
