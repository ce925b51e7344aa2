"""/me <scene> and /portrait (preset scenes): four portraits of the user with their own LoRA.

Only the requesting user's LoRA (users.lora, under loras/<their id>/) ever goes into their job's payload;
the worker refuses any other path (inference/portrait.py).
"""

from __future__ import annotations

import re
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, Update

from bot.fast_mode import choose_schedule
from bot.intake import Intake, enqueue_interactive
from bot.keyboards import SceneChoice, scene_keyboard
from bot.limits import check_admission
from bot.replies import answer_quietly
from bot.settings import BotSettings
from bot.texts import Texts
from bot.train_progress import training_state
from contract.kinds import JobKind, PortraitRequest
from contract.scenes import PORTRAIT_SCENES, SCENES_BY_ID
from jobs.aio import AsyncJobQueue
from jobs.models import UNFINISHED
from jobs.store import BotStore, UserRow
from jobs.training_store import TrainingStore

CYRILLIC = re.compile("[\u0400-\u04ff]")  # SD's text encoder knows English; Russian words reach it as noise


def scene_prompt(words: str) -> str:
    """A preset's prompt when the words name one (in either language), else the words themselves."""
    key = " ".join(words.lower().split())
    for scene in PORTRAIT_SCENES:
        if key in (scene.id, scene.en.lower(), scene.ru.lower()):
            return scene.prompt
    return words


async def queue_portrait(
    *,
    chat_id: int,
    user_row: UserRow,
    lang: str,
    scene: str,
    title: str,
    dedup_key: str,
    reply_to: int | None,
    texts: Texts,
    training: TrainingStore,
    queue: AsyncJobQueue,
    store: BotStore,
    settings: BotSettings,
    intake: Intake,
) -> str | None:
    """Queue the job; returns what to tell the user (None: nothing, e.g. a replay or a muted refusal)."""
    lora = await training.lora(user_row.id)
    if lora is None:
        return await no_lora_yet(texts, lang, training, queue, user_row.id)
    if (job_id := await store.find_job_by_dedup(dedup_key)) is not None:
        await store.add_delivery(job_id, reply_to)  # a replay after a crash
        return None
    refusal = await check_admission(queue, settings, user_row.id)
    if refusal is not None:
        allowed = intake.notices.allow(user_row.id)
        return texts(lang, refusal.value, limit=settings.max_jobs_per_user) if allowed else None
    path, cls, token = lora
    schedule = await choose_schedule(queue, settings, user_row)
    request = PortraitRequest(scene, lora=path, title=title, cls=cls, token=token, fast=schedule.request_fast)
    job_id, created = await enqueue_interactive(
        queue,
        store,
        JobKind.PORTRAIT,
        request.to_payload(),
        user_id=user_row.id,
        chat_id=chat_id,
        reply_to=reply_to,
        dedup_key=dedup_key,
    )
    if not created:
        return None
    reply = texts(lang, "me_queued", scene=escape(title))
    if schedule.busy:
        reply += "\n\n" + texts(lang, "fast_busy")
    if CYRILLIC.search(scene):  # preset scenes arrive here as English prompts; free text may not
        reply += "\n\n" + texts(lang, "me_english_hint")
    return reply


async def no_lora_yet(
    texts: Texts, lang: str, training: TrainingStore, queue: AsyncJobQueue, user_id: int, command: str = "me"
) -> str:
    """No personal model: learning the face is under way (say how far), or it has to be started.

    `command` ("me", "pose") picks the texts `<command>_no_lora` and `<command>_training` (with `{state}`)."""
    session = await training.session(user_id)
    job = (
        await queue.get(session.job_id)
        if session and session.state == "training" and session.job_id
        else None
    )
    if job is None or job.state not in UNFINISHED:
        return texts(lang, f"{command}_no_lora")
    state = training_state(texts, lang, job, await queue.jobs_ahead(job.id))
    return texts(lang, f"{command}_training", state=state)


async def me(message: Message, command: CommandObject, event_update: Update, lang: str, **deps) -> None:
    words = " ".join((command.args or "").split())
    texts: Texts = deps["texts"]
    if not words:
        await message.answer(texts(lang, "me_usage"))
        return
    answer = await queue_portrait(
        chat_id=message.chat.id,
        lang=lang,
        scene=scene_prompt(words),
        title=words,
        dedup_key=f"tg:{event_update.update_id}",
        reply_to=message.message_id,
        **_deps(deps),
    )
    if answer:
        await message.answer(answer)


async def portrait_menu(
    message: Message,
    texts: Texts,
    lang: str,
    training: TrainingStore,
    queue: AsyncJobQueue,
    user_row: UserRow,
) -> None:
    if await training.lora(user_row.id) is None:
        await message.answer(await no_lora_yet(texts, lang, training, queue, user_row.id))
        return
    ids = [scene.id for scene in PORTRAIT_SCENES]
    await message.answer(texts(lang, "portrait_menu"), reply_markup=scene_keyboard(texts, lang, ids))


async def scene_chosen(callback: CallbackQuery, callback_data: SceneChoice, lang: str, **deps) -> None:
    await answer_quietly(callback)  # at once: the button stops spinning before any database work
    scene = SCENES_BY_ID.get(callback_data.scene)
    if scene is None or not isinstance(callback.message, Message):
        return
    texts: Texts = deps["texts"]
    answer = await queue_portrait(
        chat_id=callback.message.chat.id,
        lang=lang,
        scene=scene.prompt,
        title=texts.scene_name(lang, scene.id),
        dedup_key=f"cb:{callback.id}",
        reply_to=None,
        **_deps(deps),
    )
    if answer:
        await callback.message.answer(answer)


def _deps(data: dict) -> dict:
    names = ("user_row", "texts", "training", "queue", "store", "settings", "intake")
    return {name: data[name] for name in names}


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(me, Command("me"), F.text)
    router.message.register(portrait_menu, Command("portrait"), F.text)
    router.callback_query.register(scene_chosen, SceneChoice.filter())
    return router
