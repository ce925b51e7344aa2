"""Selfies in, one answer per burst out, and the train job when there are enough.

Each photo update is handled on its own (bot/inbox.py runs one user's updates in order); the answers are
gathered per user and sent as one summary: at once for a single photo, ~1.5 s after the last photo of
an album (Telegram delivers an album as separate updates). The summary is in memory on purpose: after
a crash the photos are in the database and the next answer counts them; only that one summary is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message
from PIL import Image

from bot.intake import IncomingImage, _download
from bot.settings import BotSettings
from bot.texts import Texts
from contract.faces import CROP_SIZE, DUPLICATE, examine_selfie, is_duplicate
from contract.kinds import (
    DEFAULT_CLASS,
    MAX_SELFIES,
    MIN_SELFIES,
    TRAIN_MAX_ATTEMPTS,
    TRAIN_PRIORITY,
    JobKind,
    TrainRequest,
)
from jobs.aio import AsyncJobQueue
from jobs.errors import FILE_TOO_LARGE, INTERNAL
from jobs.store import BotStore
from jobs.training_store import TrainingStore

log = logging.getLogger("artbooth.bot.selfies")

ALBUM_QUIET_S = 1.5  # an album's photos arrive within a second of each other
OVERFLOW_WINDOW_S = 60.0  # photos right after the 20th are the rest of that burst, not style requests


@dataclass
class _Batch:
    chat_id: int
    lang: str
    outcomes: list[str | None] = field(default_factory=list)  # None: accepted; else a reason code
    timer: asyncio.Task | None = None


class SelfieDesk:
    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        training: TrainingStore,
        queue: AsyncJobQueue,
        texts: Texts,
        settings: BotSettings,
        *,
        quiet_s: float = ALBUM_QUIET_S,
    ):
        self.bot, self.store, self.training, self.queue = bot, store, training, queue
        self.texts, self.settings, self.quiet_s = texts, settings, quiet_s
        self._batches: dict[int, _Batch] = {}
        self._overflow_noticed: dict[int, float] = {}

    # -- one photo ------------------------------------------------------------------------------
    async def add(self, message: Message, update_id: int, user_id: int, lang: str) -> None:
        replay = await self.training.has_selfie_from(update_id)
        if await self.training.selfie_count(user_id) >= MAX_SELFIES:
            if replay:  # the photo that filled the session, after a crash: finish starting the training
                await self.start_training(user_id, message.chat.id, lang, f"tg:{update_id}")
            else:  # full, and not training (it failed, or the 20th's update waits for its retry)
                await self._notice_once(message, user_id, self.texts(lang, "selfie_limit", max=MAX_SELFIES))
            return
        if replay:  # a replay after a crash: this photo's summary is lost, the next one counts it
            return
        code = await self._check_and_keep(message, update_id, user_id)
        batch = self._batches.setdefault(user_id, _Batch(message.chat.id, lang))
        batch.outcomes.append(code)
        count = await self.training.selfie_count(user_id)
        if count >= MAX_SELFIES:
            await self.flush(user_id)
            await self.start_training(user_id, message.chat.id, lang, f"tg:{update_id}")
        elif message.media_group_id is None:
            await self.flush(user_id)
        else:
            self._restart_timer(user_id, batch)

    async def _check_and_keep(self, message: Message, update_id: int, user_id: int) -> str | None:
        image = IncomingImage.from_message(message)
        if image.size is not None and image.size > self.settings.max_download_bytes:
            return FILE_TOO_LARGE
        incoming = self.training.selfie_dir(user_id) / ".incoming" / f"{update_id}.{image.extension}"
        try:
            await _download(self.bot, image.file_id, incoming)
            verdict = await asyncio.to_thread(examine_selfie, incoming)
        except TelegramBadRequest as error:
            log.warning("update %s: selfie download failed: %s", update_id, error)
            return FILE_TOO_LARGE if "too big" in error.message.lower() else INTERNAL
        finally:
            await asyncio.to_thread(incoming.unlink, True)  # the original is never kept
        if verdict.code is not None:
            return verdict.code
        assert verdict.crop is not None and verdict.fingerprint is not None
        if is_duplicate(verdict.fingerprint, await self.training.fingerprints(user_id)):
            return DUPLICATE
        relative = Path("selfies") / str(user_id) / f"{update_id}.jpg"
        await save_crop(verdict.crop, self.settings.data_dir / relative)
        await asyncio.to_thread(self.training.files.publish, relative.as_posix())  # for the trainer's host
        await self.training.add_selfie(user_id, update_id, relative.as_posix(), verdict.fingerprint)
        return None

    # -- the summary ----------------------------------------------------------------------------
    def _restart_timer(self, user_id: int, batch: _Batch) -> None:
        if batch.timer is not None:
            batch.timer.cancel()
        batch.timer = asyncio.create_task(self._flush_later(user_id))

    async def _flush_later(self, user_id: int) -> None:
        await asyncio.sleep(self.quiet_s)
        batch = self._batches.get(user_id)
        if batch is not None:
            batch.timer = None  # flush() must not cancel the task it runs in
        try:
            await self.flush(user_id)
        except Exception:  # noqa: BLE001 — a lost summary is not worth a crash; the next one counts all
            log.exception("user %s: selfie summary failed", user_id)

    async def flush(self, user_id: int) -> None:
        batch = self._batches.pop(user_id, None)
        if batch is None or not batch.outcomes:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        count = await self.training.selfie_count(user_id)
        await self.bot.send_message(batch.chat_id, self.summary(batch.lang, batch.outcomes, count))

    def summary(self, lang: str, outcomes: list[str | None], count: int) -> str:
        texts = self.texts
        lines = []
        accepted = sum(code is None for code in outcomes)
        if len(outcomes) == 1:
            code = outcomes[0]
            lines.append(
                texts(lang, "selfie_ok")
                if code is None
                else texts(lang, "selfie_bad", reason=texts.selfie_reason(lang, code))
            )
        else:
            lines.append(texts(lang, "selfie_batch", accepted=accepted, rejected=len(outcomes) - accepted))
            for number, code in enumerate(outcomes, 1):
                if code is not None:
                    lines.append(
                        texts(lang, "selfie_bad_n", n=number, reason=texts.selfie_reason(lang, code))
                    )
        if count >= MAX_SELFIES:
            lines.append(texts(lang, "selfie_full", max=MAX_SELFIES))
        elif count >= MIN_SELFIES:
            lines.append(texts(lang, "selfie_enough", count=count, min=MIN_SELFIES, max=MAX_SELFIES))
        else:
            lines.append(texts(lang, "selfie_more", count=count, min=MIN_SELFIES, left=MIN_SELFIES - count))
        return "\n".join(lines)

    # -- photos after the 20th --------------------------------------------------------------------
    async def is_overflow(self, user_id: int) -> bool:
        """A photo in the minute after the 20th started the training: the same burst, not a style request."""
        session = await self.training.session(user_id)
        return (
            session is not None
            and session.state == "training"
            and session.training_at is not None
            and time.time() - session.training_at < OVERFLOW_WINDOW_S
            and await self.training.selfie_count(user_id) >= MAX_SELFIES
        )

    async def overflow(self, message: Message, user_id: int, lang: str) -> None:
        await self._notice_once(message, user_id, self.texts(lang, "selfie_overflow", max=MAX_SELFIES))

    async def _notice_once(self, message: Message, user_id: int, text: str) -> None:
        now = time.monotonic()
        if now - self._overflow_noticed.get(user_id, -1e9) < OVERFLOW_WINDOW_S:
            return  # one message per burst
        self._overflow_noticed[user_id] = now
        await message.answer(text)

    # -- the train job --------------------------------------------------------------------------
    async def start_training(self, user_id: int, chat_id: int, lang: str, dedup_key: str) -> int:
        session = await self.training.session(user_id)
        assert session is not None
        request = TrainRequest(
            photos=tuple(await self.training.selfie_paths(user_id)),
            cls=session.cls or DEFAULT_CLASS,
            steps=self.settings.train_steps,
        )
        job_id, created = await self.queue.enqueue(
            JobKind.TRAIN,
            request.to_payload(),
            user_id=user_id,
            chat_id=chat_id,
            priority=TRAIN_PRIORITY,
            dedup_key=dedup_key,
            max_attempts=TRAIN_MAX_ATTEMPTS,
        )
        if created:
            log.info("user %s: train job %s with %s photos", user_id, job_id, len(request.photos))
        # The delivery first: until mark_training, a replay of this update comes back here (see add).
        await self.store.add_delivery(job_id, None)
        await self.training.mark_training(user_id, job_id)
        session = await self.training.session(user_id)
        if session is not None and session.progress_message is None:
            sent = await self.bot.send_message(
                chat_id, self.texts(lang, "train_started", count=len(request.photos))
            )
            await self.training.set_progress_message(user_id, sent.message_id)
        return job_id

    def drop(self, user_id: int) -> None:
        """Forget the user's pending summary (/forget)."""
        batch = self._batches.pop(user_id, None)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()
        self._overflow_noticed.pop(user_id, None)

    async def stop(self) -> None:
        for batch in self._batches.values():
            if batch.timer is not None:
                batch.timer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(
                *(b.timer for b in self._batches.values() if b.timer), return_exceptions=True
            )


async def save_crop(crop: Image.Image, target: Path) -> None:
    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        crop.convert("RGB").resize((CROP_SIZE, CROP_SIZE)).save(partial, format="JPEG", quality=95)
        partial.replace(target)

    await asyncio.to_thread(write)
