"""Everything else gets a short, helpful answer. Included last: it catches what no other router took."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.texts import Texts

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")  # in a group, stay quiet unless it is a photo or a command


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_command"))


@router.message(F.text)
async def text(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_text"))


@router.message(F.document)
async def not_an_image(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_document"))


@router.message()
async def other_media(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "fallback_media"))


@router.callback_query()
async def stale_button(callback: CallbackQuery, texts: Texts, lang: str) -> None:
    await callback.answer(texts(lang, "button_expired"), show_alert=False)
