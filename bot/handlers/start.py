"""/start, /help and /lang: what the bot does, in the user's language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.keyboards import LangChoice, lang_keyboard
from bot.replies import answer_quietly, safe_edit
from bot.settings import BotSettings
from bot.texts import LANGS, Texts
from jobs.store import BotStore, UserRow


async def start(message: Message, texts: Texts, lang: str) -> None:
    await message.answer(texts(lang, "start", artists=texts.artists(lang)))


async def help_(message: Message, texts: Texts, lang: str, settings: BotSettings) -> None:
    await message.answer(
        texts(
            lang,
            "help",
            artists=texts.artists(lang),
            max_mb=settings.max_download_mb,
            max_jobs=settings.max_jobs_per_user,
        )
    )


async def choose_lang(
    message: Message, command: CommandObject, texts: Texts, lang: str, store: BotStore, user_row: UserRow
) -> None:
    wanted = (command.args or "").strip().lower()
    if wanted in LANGS:
        await store.set_lang(user_row.id, wanted)
        await message.answer(texts(wanted, "lang_set"))
    else:
        await message.answer(texts(lang, "lang_menu"), reply_markup=lang_keyboard())


async def lang_chosen(
    callback: CallbackQuery, callback_data: LangChoice, texts: Texts, store: BotStore, user_row: UserRow
) -> None:
    await answer_quietly(callback)
    await store.set_lang(user_row.id, callback_data.lang)
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, texts(callback_data.lang, "lang_set"))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(start, CommandStart(), F.text)
    router.message.register(help_, Command("help"), F.text)
    router.message.register(choose_lang, Command("lang"), F.text)
    router.callback_query.register(lang_chosen, LangChoice.filter(F.lang.in_(LANGS)))
    return router
