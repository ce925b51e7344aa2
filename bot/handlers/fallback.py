"""Everything else gets a short, helpful answer. Included last: it catches what no other router took."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.replies import answer_quietly
from bot.texts import Texts


async def unknown_command(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_command"))


async def text(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_text"))


async def not_an_image(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_document"))


async def other_media(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_media"))


async def stale_button(callback: CallbackQuery, texts: Texts, lang: str) -> None:
    await answer_quietly(callback, texts(lang, "button_expired"), show_alert=False)


def create_router() -> Router:
    router = Router(name=__name__)
    # In a group, stay quiet unless it is a photo or a command.
    router.message.filter(F.chat.type == "private")
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(text, F.text)
    router.message.register(not_an_image, F.document)
    router.message.register(other_media)
    router.callback_query.register(stale_button)
    return router
