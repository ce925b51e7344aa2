"""The Bot API client: aiogram's aiohttp session pointed at TELEGRAM_API_BASE, every send paced (bot/pacing.py)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ParseMode

from bot.pacing import FloodControl, Pacer
from bot.settings import BotSettings


def api_server(base: str | None, *, local: bool = False) -> TelegramAPIServer:
    """Telegram's own servers, or a telegram-bot-api at `base`. A server in --local mode hands out file paths
    on its own disk (which the bot must share) instead of download URLs, and serves files over 20 MB."""
    return TelegramAPIServer.from_base(base, is_local=local) if base else PRODUCTION


def create_bot(settings: BotSettings, **session_kwargs: Any) -> Bot:
    api = api_server(settings.telegram_api_base, local=settings.telegram_api_local)
    session = AiohttpSession(api=api, **session_kwargs)
    session.middleware(FloodControl(Pacer(settings.send_interval_per_chat_s, settings.sends_per_s)))
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, allow_sending_without_reply=True),
    )
