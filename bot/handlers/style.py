"""/style: the keyboard, a persistent choice (`/style vangogh`), back to the artists (`/style all`)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.keyboards import ALL_STYLES, StyleChoice, style_keyboard
from bot.replies import answer_quietly, safe_edit
from bot.texts import Texts
from contract.styles import get_style
from jobs.store import BotStore, UserRow


def confirmation(texts: Texts, lang: str, style: str | None) -> str:
    if style is None:
        return texts(lang, "style_set_all")
    return texts(lang, "style_set_one", name=texts.style_name(lang, style))


async def style_command(
    message: Message, command: CommandObject, texts: Texts, lang: str, store: BotStore, user_row: UserRow
) -> None:
    wanted = (command.args or "").strip().lower()
    if not wanted:
        current = (
            texts.style_name(lang, user_row.style) if user_row.style else texts(lang, "style_current_all")
        )
        await message.answer(
            texts(lang, "style_menu", current=current),
            reply_markup=style_keyboard(texts, lang, user_row.style),
        )
    elif wanted == ALL_STYLES:
        await store.set_style(user_row.id, None)
        await message.answer(confirmation(texts, lang, None))
    elif (preset := get_style(wanted)) is not None:
        await store.set_style(user_row.id, preset.id)
        await message.answer(confirmation(texts, lang, preset.id))
    else:
        await message.answer(texts.style_unknown(lang, wanted))


async def style_chosen(
    callback: CallbackQuery,
    callback_data: StyleChoice,
    texts: Texts,
    lang: str,
    store: BotStore,
    user_row: UserRow,
) -> None:
    await answer_quietly(callback)  # at once: the button stops spinning before any database work
    if callback_data.style == ALL_STYLES:
        style = None
    elif (preset := get_style(callback_data.style)) is not None:
        style = preset.id
    else:
        return
    await store.set_style(user_row.id, style)
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, confirmation(texts, lang, style))


def create_router() -> Router:
    router = Router(name=__name__)
    # F.text: a photo captioned "/style banksy" is a one-off request, handled in photo.py.
    router.message.register(style_command, Command("style"), F.text)
    router.callback_query.register(style_chosen, StyleChoice.filter())
    return router
