"""The Bot API client: aiogram's aiohttp session pointed at TELEGRAM_API_BASE, honouring retry_after."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetUpdates, SendChatAction, TelegramMethod
from aiogram.methods.base import Response, TelegramType

from bot.settings import BotSettings

log = logging.getLogger("artbooth.bot.telegram")


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Flood control: wait the `retry_after` Telegram asks for, then send again (a 429 means nothing was sent).

    Chat actions are not worth waiting for, and getUpdates has its own back-off. A wait longer than
    max_wait_s is left to the caller (the delivery loop reschedules instead of holding a task).
    """

    SKIP = (SendChatAction, GetUpdates)

    def __init__(self, max_wait_s: float = 60.0, max_tries: int = 5):
        self.max_wait_s = max_wait_s
        self.max_tries = max_tries

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        tries = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                tries += 1
                if (
                    isinstance(method, self.SKIP)
                    or tries >= self.max_tries
                    or error.retry_after > self.max_wait_s
                ):
                    raise
                log.warning("%s: flood control, retrying in %ss", type(method).__name__, error.retry_after)
                await asyncio.sleep(error.retry_after)


def api_server(base: str | None, *, local: bool = False) -> TelegramAPIServer:
    """Telegram's own servers, or a telegram-bot-api at `base`. A server in --local mode hands out file paths
    on its own disk (which the bot must share) instead of download URLs, and serves files over 20 MB."""
    return TelegramAPIServer.from_base(base, is_local=local) if base else PRODUCTION


def create_bot(settings: BotSettings, **session_kwargs: Any) -> Bot:
    api = api_server(settings.telegram_api_base, local=settings.telegram_api_local)
    session = AiohttpSession(api=api, **session_kwargs)
    session.middleware(RetryAfterMiddleware())
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, allow_sending_without_reply=True),
    )
