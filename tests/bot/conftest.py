"""Bot test fixtures: the fake Bot API server, test photos, and the bot's loops running in-process."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.bot.fake_telegram import TOKEN, FakeTelegram


def make_photo(
    size: tuple[int, int] = (320, 256), color: tuple[int, int, int] = (200, 120, 40), fmt: str = "JPEG"
) -> bytes:
    """A small picture with some structure (a face-ish oval on a gradient), as JPEG or PNG bytes."""
    width, height = size
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 8):
        draw.line([(0, y), (width, y)], fill=(color[0], (color[1] + y) % 256, color[2]))
    draw.ellipse([width * 0.3, height * 0.2, width * 0.7, height * 0.8], fill=(230, 190, 160))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def photo() -> bytes:
    return make_photo()


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


def bot_settings(telegram: FakeTelegram, data_dir: Path, **overrides):
    from bot.settings import BotSettings

    values = dict(
        bot_token=TOKEN,
        telegram_api_base=telegram.base_url,
        data_dir=data_dir,
        inference="external",
        models="tiny",
        device="cpu",
        polling_timeout_s=1,
        delivery_poll_s=0.1,
        chat_action_every_s=0.5,
    )
    values.update(overrides)
    return BotSettings(_env_file=None, **values)


class InProcessBot:
    """The bot's poller, inbox processor and delivery loop on the test's event loop (no worker)."""

    def __init__(self, telegram: FakeTelegram, data_dir: Path, **overrides):
        self.telegram = telegram
        self.settings = bot_settings(telegram, data_dir, **overrides)
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> InProcessBot:
        from bot.app import build_dispatcher
        from bot.delivery import DeliveryLoop
        from bot.inbox import InboxProcessor, UpdatePoller
        from bot.telegram import create_bot
        from jobs.aio import open_db

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = await open_db(self.settings.db_path)
        self.bot = create_bot(self.settings)
        self.dispatcher = build_dispatcher(self.bot, self.db, self.settings)
        self.store, self.queue = self.dispatcher["store"], self.dispatcher["queue"]
        processor = InboxProcessor(self.dispatcher, self.bot, self.store)
        poller = UpdatePoller(
            self.bot,
            self.store,
            timeout_s=1,
            on_recorded=processor.wake,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )
        delivery = DeliveryLoop(self.bot, self.store, self.queue, self.dispatcher["texts"], self.settings)
        self.tasks = [asyncio.create_task(c) for c in (processor.run(), poller.run(), delivery.run())]
        return self

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.bot.session.close()
        await self.db.close()

    def sql(self, statement: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A separate synchronous connection, as another process would see the database."""
        conn = sqlite3.connect(self.settings.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    async def handled(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the inbox row of this update is handled."""
        await self.telegram.await_for(
            lambda: self.sql("SELECT 1 FROM inbox WHERE update_id = ? AND state != 'new'", (update_id,)),
            timeout,
            f"update {update_id} handled",
        )


@pytest.fixture
async def app(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[InProcessBot]:
    bot = await InProcessBot(telegram, tmp_path / "data").start()
    yield bot
    await bot.stop()
