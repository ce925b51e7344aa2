"""/forget: a yes/no keyboard, then every row and file of the user is deleted (bot/forget.py)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, Update

from bot.forget import Forgetter
from bot.keyboards import ForgetChoice, forget_keyboard
from bot.replies import answer_quietly, safe_edit
from bot.selfie_intake import SelfieDesk
from bot.texts import Texts
from jobs.store import UserRow


async def forget_command(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "forget_confirm"), reply_markup=forget_keyboard(texts, lang))


async def forget_chosen(
    callback: CallbackQuery,
    callback_data: ForgetChoice,
    event_update: Update,
    texts: Texts,
    lang: str,
    forgetter: Forgetter,
    selfies: SelfieDesk,
    user_row: UserRow,
) -> None:
    await answer_quietly(callback)
    if callback_data.sure:
        selfies.drop(user_row.id)
        await forgetter.forget(user_row.id, event_update.update_id)
    text = texts(lang, "forget_done" if callback_data.sure else "forget_kept")
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, text)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(forget_command, Command("forget"), F.text)
    router.callback_query.register(forget_chosen, ForgetChoice.filter())
    return router
