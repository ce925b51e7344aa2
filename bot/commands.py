"""The command menu, registered with set_my_commands in English (the default) and Russian."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.texts import Texts

log = logging.getLogger("artbooth.bot.commands")

COMMANDS = (
    "start",
    "help",
    "style",
    "settings",
    "status",
    "cancel",
    "lang",
    "train",
    "done",
    "me",
    "portrait",
    "pose",
    "forget",
)


def bot_commands(texts: Texts, lang: str) -> list[BotCommand]:
    return [BotCommand(command=name, description=texts(lang, f"cmd_{name}")) for name in COMMANDS]


async def set_commands(bot: Bot, texts: Texts) -> None:
    await bot.set_my_commands(bot_commands(texts, "en"), scope=BotCommandScopeDefault())
    for lang in ("en", "ru"):
        await bot.set_my_commands(
            bot_commands(texts, lang), scope=BotCommandScopeDefault(), language_code=lang
        )


ADMIN_COMMANDS = ("stats", "queue", "block", "unblock")


async def set_admin_commands(bot: Bot, texts: Texts, admin_ids: frozenset[int]) -> None:
    """Admins see their commands in their own chat's menu; nobody else does (the default scope lacks them)."""
    for admin in sorted(admin_ids):
        for lang in ("en", "ru"):
            commands = bot_commands(texts, lang) + [
                BotCommand(command=name, description=texts(lang, f"cmd_{name}")) for name in ADMIN_COMMANDS
            ]
            try:
                await bot.set_my_commands(
                    commands,
                    scope=BotCommandScopeChat(chat_id=admin),
                    language_code=None if lang == "en" else lang,
                )
            except TelegramBadRequest as error:  # "chat not found": the admin has not started the bot yet
                log.info("admin %s: no command menu yet (%s)", admin, error.message)
                break
