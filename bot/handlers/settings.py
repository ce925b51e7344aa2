"""/settings: quality or fast (fast mode, the few-step schedule), remembered in the user's row."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.keyboards import ModeChoice, mode_keyboard
from bot.replies import answer_quietly, safe_edit
from bot.texts import Texts
from jobs.store import BotStore, UserRow

WORDS = {"fast": True, "быстро": True, "quality": False, "качество": False}


def confirmation(texts: Texts, lang: str, fast: bool) -> str:
    return texts(lang, "mode_set_fast" if fast else "mode_set_quality")


async def settings_command(
    message: Message, command: CommandObject, texts: Texts, lang: str, store: BotStore, user_row: UserRow
) -> None:
    wanted = (command.args or "").strip().lower()
    if not wanted:
        current = texts(lang, "mode_fast" if user_row.fast else "mode_quality")
        await message.answer(
            texts(lang, "settings_menu", current=current),
            reply_markup=mode_keyboard(texts, lang, user_row.fast),
        )
    elif wanted in WORDS:
        await store.set_fast(user_row.id, WORDS[wanted])
        await message.answer(confirmation(texts, lang, WORDS[wanted]))
    else:
        await message.answer(texts(lang, "settings_unknown"))


async def mode_chosen(
    callback: CallbackQuery,
    callback_data: ModeChoice,
    texts: Texts,
    lang: str,
    store: BotStore,
    user_row: UserRow,
) -> None:
    await answer_quietly(callback)  # at once: the button stops spinning before any database work
    await store.set_fast(user_row.id, callback_data.fast)
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, confirmation(texts, lang, callback_data.fast))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(settings_command, Command("settings"), F.text)
    router.callback_query.register(mode_chosen, ModeChoice.filter())
    return router
