"""The command menu, registered with set_my_commands in English (the default) and Russian."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeDefault

from bot.texts import Texts

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
