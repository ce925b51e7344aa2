"""/train (with /train cancel), the subject's class, selfies while collecting, /done.

Registered before the photo router: while a user's session is collecting, their photos are selfies,
not style requests (see `collecting`).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, Update

from bot.handlers.photo import IMAGE
from bot.keyboards import TrainClass, class_keyboard
from bot.replies import answer_quietly, safe_edit
from bot.selfie_intake import SelfieDesk
from bot.settings import BotSettings
from bot.texts import Texts
from contract.kinds import MIN_SELFIES, SUBJECT_CLASSES
from jobs.aio import AsyncJobQueue
from jobs.store import BotStore, UserRow
from jobs.training_store import TrainingStore


async def collecting(
    message: Message, event_update: Update, training: TrainingStore, store: BotStore, user_row: UserRow
) -> bool:
    session = await training.session(user_row.id)
    if session is None:
        return False
    if session.state == "collecting":
        return True
    # The photo whose job this training is, replayed after a crash: the selfie desk finishes starting it.
    dedup_key = f"tg:{event_update.update_id}"
    return session.job_id is not None and await store.find_job_by_dedup(dedup_key) == session.job_id


async def overflowing(message: Message, selfies: SelfieDesk, user_row: UserRow) -> bool:
    return await selfies.is_overflow(user_row.id)


async def train_command(
    message: Message,
    command: CommandObject,
    texts: Texts,
    lang: str,
    training: TrainingStore,
    queue: AsyncJobQueue,
    user_row: UserRow,
) -> None:
    if (command.args or "").strip().lower() in ("cancel", "stop", "отмена"):
        await cancel_training(message, texts, lang, training, queue, user_row)
        return
    session = await training.session(user_row.id)
    if session is not None and session.state == "training":
        job = await queue.get(session.job_id) if session.job_id else None
        percent = round(job.progress * 100) if job else 0
        await message.answer(texts(lang, "train_running", percent=percent))
    elif session is not None:
        count = await training.selfie_count(user_row.id)
        markup = class_keyboard(texts, lang, SUBJECT_CLASSES) if session.cls is None else None
        await message.answer(texts(lang, "train_collecting", count=count), reply_markup=markup)
    else:
        await training.open_session(user_row.id, message.chat.id)
        await message.answer(
            texts(lang, "train_intro"), reply_markup=class_keyboard(texts, lang, SUBJECT_CLASSES)
        )


async def cancel_training(
    message: Message,
    texts: Texts,
    lang: str,
    training: TrainingStore,
    queue: AsyncJobQueue,
    user_row: UserRow,
) -> None:
    session = await training.session(user_row.id)
    if session is None:
        await message.answer(texts(lang, "train_nothing"))
        return
    if session.job_id is not None:
        await queue.cancel(session.job_id, user_id=user_row.id)  # a running one stops at its next step
    await training.close_session(user_row.id, delete_selfies=True)
    await message.answer(texts(lang, "train_cancelled"))


async def class_chosen(
    callback: CallbackQuery,
    callback_data: TrainClass,
    texts: Texts,
    lang: str,
    training: TrainingStore,
    user_row: UserRow,
) -> None:
    await answer_quietly(callback)
    if callback_data.cls not in SUBJECT_CLASSES or not isinstance(callback.message, Message):
        return
    session = await training.session(user_row.id)
    if session is not None and session.state == "training":
        return
    if session is None:  # the keyboard of an earlier /train: start again
        await training.open_session(user_row.id, callback.message.chat.id)
    await training.set_class(user_row.id, callback_data.cls)
    name = texts.class_name(lang, callback_data.cls)
    await safe_edit(callback.message, texts(lang, "train_class_set", cls=name))


async def selfie(
    message: Message, event_update: Update, selfies: SelfieDesk, user_row: UserRow, lang: str
) -> None:
    await selfies.add(message, event_update.update_id, user_row.id, lang)


async def overflow(message: Message, selfies: SelfieDesk, user_row: UserRow, lang: str) -> None:
    await selfies.overflow(message, user_row.id, lang)


async def done(
    message: Message,
    event_update: Update,
    texts: Texts,
    lang: str,
    training: TrainingStore,
    selfies: SelfieDesk,
    store: BotStore,
    queue: AsyncJobQueue,
    settings: BotSettings,
    user_row: UserRow,
) -> None:
    dedup_key = f"tg:{event_update.update_id}"
    session = await training.session(user_row.id)
    if session is None:
        await message.answer(texts(lang, "train_no_session"))
        return
    if session.state == "training":
        if session.job_id is not None and await store.find_job_by_dedup(dedup_key) == session.job_id:
            await selfies.start_training(user_row.id, message.chat.id, lang, dedup_key)  # a replay: finish it
            return
        job = await queue.get(session.job_id) if session.job_id else None
        await message.answer(texts(lang, "train_running", percent=round(job.progress * 100) if job else 0))
        return
    if session.cls is None:
        await message.answer(
            texts(lang, "train_choose_class_first"), reply_markup=class_keyboard(texts, lang, SUBJECT_CLASSES)
        )
        return
    await selfies.flush(user_row.id)
    count = await training.selfie_count(user_row.id)
    if count < MIN_SELFIES:
        await message.answer(
            texts(lang, "train_too_few", count=count, min=MIN_SELFIES, left=MIN_SELFIES - count)
        )
        return
    if await queue.count_queued() >= settings.max_queue:
        await message.answer(texts(lang, "queue_full"))
        return
    await selfies.start_training(user_row.id, message.chat.id, lang, dedup_key)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(train_command, Command("train"), F.text)
    router.message.register(done, Command("done"), F.text)
    router.message.register(selfie, IMAGE, collecting)
    router.message.register(overflow, IMAGE, overflowing)
    router.callback_query.register(class_chosen, TrainClass.filter())
    return router
