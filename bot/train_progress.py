"""The training's live progress message, and its last word ("ready" with examples, or what went wrong).

`TrainingProgress` runs beside the delivery loop: for every session in 'training' it edits the one
progress message sent at /done, only when the text changed and at most once per 3 s per chat (Telegram's
limit for edits), and it waits out a `retry_after`. `finish_training` is the train job's delivery: the
deliveries row makes it happen exactly once, like a stylize album; its word is a new message (Telegram
does not notify about edits), and the progress message is edited to say that it ended.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import Message

from bot.settings import BotSettings
from bot.texts import Texts
from contract.kinds import TrainPhase, TrainResult
from jobs.aio import AsyncJobQueue
from jobs.files import open_files
from jobs.models import Job, JobState
from jobs.store import BotStore
from jobs.training_store import TrainingStore

log = logging.getLogger("artbooth.bot.train_progress")

EDIT_INTERVAL_S = 3.0


def eta_text(texts: Texts, lang: str, eta_s: float | None) -> str:
    """' · about 40 s left' under a minute and a half, else minutes: rounded to whole minutes, a training
    of a minute or two said "about 1 min" from start to end (issue 12)."""
    if eta_s is None or eta_s <= 0:
        return ""
    if eta_s < 90:
        return texts(lang, "train_eta_s", seconds=max(10, round(eta_s / 10) * 10))
    return texts(lang, "train_eta", minutes=round(eta_s / 60))


def progress_text(texts: Texts, lang: str, job: Job, ahead: int) -> str:
    if job.state == JobState.QUEUED:
        return texts(lang, "train_waiting", ahead=ahead)
    percent = round(job.progress * 100)
    preparing = TrainPhase.of(job.progress_text) == TrainPhase.CLASS_IMAGES
    phase = "train_phase_prepare" if preparing else "train_phase_learn"
    eta = eta_text(texts, lang, job.eta_s)
    return texts(lang, "train_progress", phase=texts(lang, phase), percent=percent, eta=eta)


def training_state(texts: Texts, lang: str, job: Job, ahead: int) -> str:
    """How far a training is, in a few words for /status and /me: '45% · about 2 min left', 'in the queue…'."""
    if job.state == JobState.QUEUED:
        return texts(lang, "train_state_queued", ahead=ahead)
    eta = eta_text(texts, lang, job.eta_s)
    return texts(lang, "train_state_running", percent=round(job.progress * 100), eta=eta)


class TrainingProgress:
    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        queue: AsyncJobQueue,
        texts: Texts,
        settings: BotSettings,
        *,
        every_s: float = 1.0,
        min_interval_s: float = EDIT_INTERVAL_S,
    ):
        self.bot, self.store, self.queue, self.texts = bot, store, queue, texts
        self.training = TrainingStore(store.db, settings.data_dir, open_files(settings.shared))
        self.every_s, self.min_interval_s = every_s, min_interval_s
        self._shown: dict[int, str] = {}  # job id → the text on screen (in memory: a restart edits once more)
        self._next_edit: dict[int, float] = {}  # chat id → monotonic time of the next allowed edit

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 — cosmetic: the final delivery does not depend on it
                log.exception("training progress tick failed")
            await asyncio.sleep(self.every_s)

    async def tick(self) -> None:
        edits = []
        for session in await self.training.sessions_training():
            if session.job_id is None or session.progress_message is None:
                continue
            job = await self.queue.get(session.job_id)
            if job is not None and job.state == JobState.CANCELLED:  # /cancel took the queued training
                await self.training.back_to_collecting(session.user_id, job.id)
                user = await self.store.get_user(session.user_id)
                edits.append(
                    self._edit(
                        session.chat_id,
                        session.progress_message,
                        job.id,
                        self.texts(user.lang if user else "en", "train_stopped"),
                    )
                )
                continue
            if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
                continue  # over: finish_training (the job's delivery) writes the last word
            user = await self.store.get_user(session.user_id)
            lang = user.lang if user else "en"
            ahead = await self.queue.jobs_ahead(job.id)
            text = progress_text(self.texts, lang, job, ahead)
            if self._shown.get(job.id) == text or time.monotonic() < self._next_edit.get(
                session.chat_id, 0.0
            ):
                continue
            edits.append(self._edit(session.chat_id, session.progress_message, job.id, text))
        await asyncio.gather(*edits)

    async def _edit(self, chat_id: int, message_id: int, job_id: int, text: str) -> None:
        self._next_edit[chat_id] = time.monotonic() + self.min_interval_s
        try:
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id)
        except TelegramRetryAfter as error:
            self._next_edit[chat_id] = time.monotonic() + error.retry_after
            return
        except TelegramBadRequest as error:
            if "not modified" not in error.message.lower():
                log.info("job %s: progress edit refused: %s", job_id, error.message)
        except TelegramAPIError as error:
            log.info("job %s: progress edit failed: %s", job_id, error)
            return
        self._shown[job_id] = text


async def finish_training(
    bot: Bot, store: BotStore, texts: Texts, settings: BotSettings, job: Job, lang: str
) -> Message:
    """The train job is over: remember the LoRA (and drop the selfies), or keep the photos for a retry."""
    training = TrainingStore(store.db, settings.data_dir, open_files(settings.shared))
    assert job.user_id is not None and job.chat_id is not None
    session = await training.session(job.user_id)
    progress_message = session.progress_message if session and session.job_id == job.id else None
    trained = TrainResult.from_dict(job.result) if job.state == JobState.DONE else None
    if trained is not None:
        await training.set_lora(job.user_id, trained.lora, trained.cls, trained.token)
        if session is not None and session.job_id == job.id:
            await training.close_session(job.user_id, delete_selfies=not settings.keep_selfies)
        text, last_progress = texts(lang, "train_ready"), texts(lang, "train_progress_done")
    else:
        await training.back_to_collecting(job.user_id, job.id)
        text = texts(lang, "train_failed", reason=texts.error_reason(lang, job.error_code))
        last_progress = texts(lang, "train_progress_failed")
    if progress_message is not None:
        try:  # the progress message stops at its end rather than at the last percentage it showed
            await bot.edit_message_text(text=last_progress, chat_id=job.chat_id, message_id=progress_message)
        except TelegramBadRequest as error:  # deleted by the user, too old, already edited (a replay)
            log.info("job %s: cannot edit the progress message: %s", job.id, error.message)
    # A new message, not only an edit: Telegram does not notify about edits, and the user may be away.
    return await bot.send_message(job.chat_id, text)
