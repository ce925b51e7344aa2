"""Finished jobs go back to their users: an album of the pictures, or a message saying what went wrong.

Exactly once per job. A `deliveries` row is written with the job (bot/intake.py); this loop picks the
pending ones whose job is over, marks each 'sending', sends, and marks it 'sent'. Flood control
(retry_after) and network or 5xx failures put the row back to 'pending' with a later next_try_at; nothing
is dropped. A crash between Telegram accepting the album and the 'sent' mark (one HTTP response) leaves
the row 'sending': on start-up those are sent again, because a duplicate album is better than a silent
loss, and Telegram offers no way to ask whether a message went out.

A timeout is just as ambiguous: the request may have reached Telegram and the album been delivered,
yet it counts as a network failure and is sent again. Uploads get a longer request timeout
(UPLOAD_TIMEOUT_S) to make that rarer, and on a graceful stop the sends under way get STOP_GRACE_S to
finish before they are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile, InputMediaDocument, InputMediaPhoto, Message, ReplyParameters

from bot.loops import IterationGuard
from bot.metrics import BotMetrics
from bot.settings import BotSettings
from bot.texts import Texts
from bot.train_progress import TrainingProgress, finish_training
from contract.kinds import JobKind, PortraitRequest, PortraitResult, PoseRequest, PoseResult, StylizeResult
from jobs.aio import AsyncJobQueue
from jobs.errors import INTERNAL
from jobs.files import open_files
from jobs.models import Job, JobState
from jobs.queue import OVER
from jobs.store import BotStore, DueDelivery
from jobs.wakeup import AsyncWakeup

log = logging.getLogger("artbooth.bot.delivery")

MAX_ATTEMPTS = 40  # network failures: with back-off capped at 5 minutes, about three hours of trying
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # Telegram's limit for sendPhoto; bigger goes as a document
ALBUM_MAX = 10  # items per sendMediaGroup
UPLOAD_TIMEOUT_S = 180  # an album of four large pictures over a slow uplink; aiogram's default is 60 s
STOP_GRACE_S = 5.0  # like the inbox's handlers (bot/app.py stops everything within 20 s)
# What Telegram says when it will not take a picture as a photo (it will as a document).
PHOTO_REFUSALS = (
    "PHOTO_INVALID_DIMENSIONS",
    "PHOTO_SAVE_FILE_INVALID",
    "IMAGE_PROCESS_FAILED",
    "PHOTO_EXT_INVALID",
    "TOO BIG",
    "TOO LARGE",
    "FILE_PARTS_INVALID",
)


def photo_refused(error: TelegramBadRequest) -> bool:
    text = error.message.upper()
    return any(marker in text for marker in PHOTO_REFUSALS)


def backoff_s(attempt: int) -> float:
    return min(300.0, 2.0 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)


class DeliveryLoop:
    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        queue: AsyncJobQueue,
        texts: Texts,
        settings: BotSettings,
        *,
        concurrency: int = 4,
        stop_grace_s: float = STOP_GRACE_S,
        metrics: BotMetrics | None = None,
    ):
        self.bot, self.store, self.queue, self.texts, self.settings = bot, store, queue, texts, settings
        self.concurrency, self.stop_grace_s = concurrency, stop_grace_s
        self._in_flight: dict[int, asyncio.Task] = {}
        self.files = open_files(settings.shared)
        self.metrics = metrics

    async def run(self) -> None:
        if resumed := await self.store.resume_sending():
            log.warning("deliveries interrupted by a crash, sending again: jobs %s", resumed)
        progress = TrainingProgress(self.bot, self.store, self.queue, self.texts, self.settings)
        progress_task = asyncio.create_task(progress.run())  # training progress edits, beside us
        guard = IterationGuard(log, "delivery")
        wakeup = await AsyncWakeup.listen(self.settings.database, OVER)  # PostgreSQL: woken as a job ends
        try:
            while True:
                try:
                    await self._start_due()
                except Exception:  # noqa: BLE001 — a locked database...: the rows are still there next time
                    await guard.failed()
                    continue
                guard.succeeded()
                await wakeup.wait(self.settings.delivery_poll_s)
        finally:
            progress_task.cancel()
            await wakeup.close()
            await self._finish_in_flight()
            await asyncio.gather(progress_task, return_exceptions=True)

    async def _finish_in_flight(self) -> None:
        """On stop, sends under way get a few seconds: cut off, one that arrived would be sent again."""
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.stop_grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_due(self) -> None:
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return
        for due in await self.store.due_deliveries(limit=free + len(self._in_flight)):
            if due.job_id not in self._in_flight and len(self._in_flight) < self.concurrency:
                task = asyncio.create_task(self._deliver_logged(due))
                self._in_flight[due.job_id] = task
                task.add_done_callback(lambda _t, job_id=due.job_id: self._in_flight.pop(job_id, None))

    async def _deliver_logged(self, due: DueDelivery) -> None:
        try:
            await self.deliver(due)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: delivery crashed", due.job_id)
            await self._retry_later(due.job_id, due.attempts + 1)

    async def deliver(self, due: DueDelivery) -> None:
        if not await self.store.claim_delivery(due.job_id):
            return
        job = await self.queue.get(due.job_id)
        if job is None or job.state == JobState.CANCELLED or job.chat_id is None:
            await self.store.mark_sent(due.job_id, [])  # the user cancelled it: /cancel already answered
            return
        user = await self.store.get_user(job.user_id) if job.user_id is not None else None
        lang = user.lang if user else "en"
        attempt = due.attempts + 1
        try:
            if job.kind == JobKind.TRAIN:  # the progress message's last word (bot/train_progress.py)
                messages = [await finish_training(self.bot, self.store, self.texts, self.settings, job, lang)]
            elif job.state == JobState.DONE:
                try:
                    messages = await self.send_album(job, lang, due.reply_to)
                except FileNotFoundError as error:  # results deleted under us: say so rather than loop
                    log.error("job %s: result file missing: %s", job.id, error)
                    messages = [await self.send_failure(job.chat_id, lang, INTERNAL, due.reply_to)]
            else:
                log.info("job %s failed (%s): telling the user", job.id, job.error_code)
                messages = [await self.send_failure(job.chat_id, lang, job.error_code, due.reply_to)]
        except TelegramRetryAfter as error:
            log.warning("job %s: flood control, delivering in %ss", job.id, error.retry_after)
            await self.store.retry_delivery(job.id, time.time() + error.retry_after, count_attempt=False)
        except (TelegramNetworkError, TelegramServerError) as error:
            log.warning("job %s: delivery attempt %s failed: %s", job.id, attempt, error)
            await self._retry_later(job.id, attempt)
        except TelegramForbiddenError as error:  # the user blocked the bot
            log.info("job %s: cannot deliver: %s", job.id, error)
            await self.store.give_up_delivery(job.id)
        except TelegramBadRequest as error:
            log.error("job %s: Telegram refused the delivery: %s", job.id, error)
            await self.store.give_up_delivery(job.id)
        else:
            await self.store.mark_sent(job.id, [m.message_id for m in messages])
            log.info("job %s delivered to chat %s", job.id, job.chat_id)
            if self.metrics:
                self.metrics.job_delivered(job)

    async def _retry_later(self, job_id: int, attempt: int) -> None:
        if attempt >= MAX_ATTEMPTS:
            log.error("job %s: giving up delivery after %s attempts", job_id, attempt)
            await self.store.give_up_delivery(job_id)
        else:
            await self.store.retry_delivery(job_id, time.time() + backoff_s(attempt))

    async def send_album(self, job: Job, lang: str, reply_to: int | None) -> list[Message]:
        if job.kind == JobKind.PORTRAIT:
            portrait = PortraitResult.from_dict(job.result)
            request = PortraitRequest.from_payload(job.payload)
            relative = portrait.images
            caption = self.texts.portrait_caption(lang, request.title or request.scene, fast=portrait.fast)
        elif job.kind == JobKind.POSE:
            pose = PoseResult.from_dict(job.result)
            relative = pose.images
            caption = self.texts.pose_caption(lang, PoseRequest.from_payload(job.payload).title, pose.caption)
        else:
            album = StylizeResult.from_dict(job.result)
            relative = [image.path for image in album.images]
            caption = self.texts.album_caption(
                lang, album.caption, [image.style for image in album.images], fast=album.fast
            )
        # FILE_STORE=database: the pictures come down from the database (a worker elsewhere wrote them).
        paths = [await asyncio.to_thread(self.files.fetch, path) for path in relative]
        as_documents = any(path.stat().st_size > MAX_PHOTO_BYTES for path in paths)
        if not as_documents:
            try:
                return await self._send_pictures(job.chat_id, paths, caption, reply_to, documents=False)
            except TelegramBadRequest as error:
                if not photo_refused(error):
                    raise
                log.info(
                    "job %s: Telegram refused the photos (%s); sending them as documents",
                    job.id,
                    error.message,
                )
        return await self._send_pictures(job.chat_id, paths, caption, reply_to, documents=True)

    async def _send_pictures(
        self, chat_id: int, paths: list[Path], caption: str, reply_to: int | None, *, documents: bool
    ) -> list[Message]:
        reply = ReplyParameters(message_id=reply_to) if reply_to else None
        if len(paths) == 1:
            send = self.bot.send_document if documents else self.bot.send_photo
            return [
                await send(
                    chat_id,
                    FSInputFile(paths[0]),
                    caption=caption,
                    reply_parameters=reply,
                    request_timeout=UPLOAD_TIMEOUT_S,
                )
            ]
        kind = InputMediaDocument if documents else InputMediaPhoto
        sent: list[Message] = []
        for start in range(0, len(paths), ALBUM_MAX):
            chunk = paths[start : start + ALBUM_MAX]
            media = [
                kind(media=FSInputFile(p), caption=caption if start + i == 0 else None)
                for i, p in enumerate(chunk)
            ]
            sent += await self.bot.send_media_group(
                chat_id,
                media,
                reply_parameters=reply if start == 0 else None,
                request_timeout=UPLOAD_TIMEOUT_S,
            )
        return sent

    async def send_failure(self, chat_id: int, lang: str, code: str | None, reply_to: int | None) -> Message:
        reply = ReplyParameters(message_id=reply_to) if reply_to else None
        return await self.bot.send_message(chat_id, self.texts.error(lang, code), reply_parameters=reply)
