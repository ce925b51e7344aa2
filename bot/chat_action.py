"""'sending photo…' in the chats whose jobs are being painted, renewed before Telegram's 5 s run out."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError

from bot.loops import IterationGuard
from jobs.store import BotStore

log = logging.getLogger("artbooth.bot.chat_action")


async def show_progress(bot: Bot, store: BotStore, every_s: float) -> None:
    guard = IterationGuard(log, "chat action")
    while True:
        try:
            chats = await store.running_chats()
        except Exception:  # noqa: BLE001 — a locked database...: try again later
            await guard.failed()
            continue
        guard.succeeded()
        for chat_id in chats:
            try:
                await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
            except TelegramAPIError as error:  # cosmetic: never worth a retry
                log.debug("chat action in %s: %s", chat_id, error)
        await asyncio.sleep(every_s)
