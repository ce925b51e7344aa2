"""/status (the user's jobs and the queue) and /cancel (the user's queued jobs)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.texts import Texts
from bot.train_progress import training_state
from contract.kinds import JobKind
from jobs.aio import AsyncJobQueue
from jobs.models import JobState
from jobs.store import UserRow


async def status(message: Message, texts: Texts, lang: str, queue: AsyncJobQueue, user_row: UserRow) -> None:
    jobs = await queue.user_jobs(user_row.id)
    lines = [texts(lang, "status_head") if jobs else texts(lang, "status_none")]
    for job in jobs:
        if job.kind == JobKind.TRAIN:
            state = training_state(texts, lang, job, await queue.jobs_ahead(job.id))
            lines.append(texts(lang, "status_training", id=job.id, state=state))
        elif job.state == JobState.RUNNING:
            lines.append(texts(lang, "status_running", id=job.id, percent=round(job.progress * 100)))
        else:
            lines.append(texts(lang, "status_queued", id=job.id, position=await queue.jobs_ahead(job.id)))
    queued, running = await queue.count_queued(), await queue.count_running()
    lines.append("")
    lines.append(texts(lang, "status_queue", queued=queued, running=running))
    await message.answer("\n".join(lines))


async def cancel(message: Message, texts: Texts, lang: str, queue: AsyncJobQueue, user_row: UserRow) -> None:
    cancelled = await queue.cancel_user_queued(user_row.id)
    still_running = any(job.state == JobState.RUNNING for job in await queue.user_jobs(user_row.id))
    text = texts(lang, "cancel_done", count=len(cancelled)) if cancelled else texts(lang, "cancel_none")
    if still_running:
        text += "\n" + texts(lang, "cancel_running")
    await message.answer(text)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(status, Command("status"), F.text)
    router.message.register(cancel, Command("cancel"), F.text)
    return router
