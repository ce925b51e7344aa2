"""A /pose reference becomes a pose job: the user's LoRA, limits, download, the reference's checks, enqueue.

Like bot/intake.py, it runs once per update and again after a crash, so every step is idempotent: the
job's dedup_key is 'tg:<update_id>' and the waiting /pose is cleared only once the job (and its delivery)
exist. The reference is decoded and checked here, in a thread (contract/pose.py), so that a file that is
not a picture or is too small is answered at once and the /pose keeps waiting for a better one; a
reference with nobody in it is painted anyway, with a tip.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape
from pathlib import Path

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message

from bot.handlers.portrait import CYRILLIC, no_lora_yet, scene_prompt
from bot.intake import IncomingImage, Intake, _download, enqueue_interactive
from bot.limits import check_admission
from bot.settings import BotSettings
from bot.texts import Texts
from contract.kinds import JobKind, PoseRequest
from contract.pose import MIN_REFERENCE_SIDE, examine_reference
from jobs.aio import AsyncJobQueue
from jobs.errors import IMAGE_TOO_SMALL
from jobs.pose_store import PoseStore
from jobs.store import BotStore, UserRow
from jobs.training_store import TrainingStore

log = logging.getLogger("artbooth.bot.pose")

POSE_WAIT_S = 30 * 60  # a /pose older than this is forgotten: a photo next day is a style request again


async def no_model_reply(
    texts: Texts, lang: str, training: TrainingStore, queue: AsyncJobQueue, user_id: int
):
    """None when the user has a LoRA; else why /pose cannot paint them yet (training under way, or none)."""
    if await training.lora(user_id) is not None:
        return None
    return await no_lora_yet(texts, lang, training, queue, user_id, "pose")


class PoseDesk:
    """Turns references into pose jobs. One instance lives in the dispatcher's workflow_data."""

    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        queue: AsyncJobQueue,
        training: TrainingStore,
        poses: PoseStore,
        texts: Texts,
        settings: BotSettings,
        intake: Intake,
    ):
        self.bot, self.store, self.queue, self.training = bot, store, queue, training
        self.poses, self.texts, self.settings, self.intake = poses, texts, settings, intake

    async def accept(self, message: Message, update_id: int, user: UserRow, lang: str, scene: str) -> None:
        texts, settings = self.texts, self.settings
        dedup_key = f"tg:{update_id}"
        if (job_id := await self.store.find_job_by_dedup(dedup_key)) is not None:
            await self.store.add_delivery(job_id, message.message_id)  # a replay after a crash
            await self.poses.done(user.id)
            return
        if (reply := await no_model_reply(texts, lang, self.training, self.queue, user.id)) is not None:
            await message.answer(reply)
            return
        refusal = await check_admission(self.queue, settings, user.id)
        if refusal is not None:
            if self.intake.notices.allow(user.id):
                await message.answer(texts(lang, refusal.value, limit=settings.max_jobs_per_user))
            return
        relative = await self._download(message, update_id, user, lang)
        if relative is None:
            return
        check = await asyncio.to_thread(examine_reference, settings.data_dir / relative)
        if check.code is not None:  # answered now; the /pose waits for a better photo
            await asyncio.to_thread((settings.data_dir / relative).unlink, True)
            await self.poses.wait(user.id, message.chat.id, scene or None)
            await message.answer(texts(lang, "pose_bad_reference", reason=self._reason(lang, check.code)))
            return
        await asyncio.to_thread(self.intake.files.publish, relative.as_posix())  # for workers on other hosts
        path, cls, token = await self.training.lora(user.id) or ("", None, None)
        request = PoseRequest(
            relative.as_posix(),
            scene=scene_prompt(scene)
            if scene
            else "",  # a preset's name ("moon") means its prompt, as in /me
            lora=path,
            title=scene or None,
            cls=cls,
            token=token,
        )
        job_id, created = await enqueue_interactive(
            self.queue,
            self.store,
            JobKind.POSE,
            request.to_payload(),
            user_id=user.id,
            chat_id=message.chat.id,
            reply_to=message.message_id,
            dedup_key=dedup_key,
        )
        await self.poses.done(user.id)
        if not created:
            return
        log.info(
            "update %s: pose job %s queued for user %s (%s faces)", update_id, job_id, user.id, check.faces
        )
        await message.answer(self._queued(lang, scene, check.faces))

    async def _download(self, message: Message, update_id: int, user: UserRow, lang: str) -> Path | None:
        """The reference under uploads/<user id>/, or None (the user has been told why)."""
        texts, settings = self.texts, self.settings
        image = IncomingImage.from_message(message)
        if image.size is not None and image.size > settings.max_download_bytes:
            size_mb = f"{image.size / 2**20:.1f}"
            await message.answer(
                texts(lang, "file_too_big", size_mb=size_mb, max_mb=settings.max_download_mb)
            )
            return None
        relative = Path("uploads") / str(user.id) / f"{update_id}-{image.file_unique_id}.{image.extension}"
        try:
            await _download(self.bot, image.file_id, settings.data_dir / relative)
        except TelegramBadRequest as error:
            log.warning("update %s: reference download failed: %s", update_id, error)
            await message.answer(texts(lang, "download_failed"))
            return None
        return relative

    def _reason(self, lang: str, code: str) -> str:
        if code == IMAGE_TOO_SMALL:
            return self.texts(lang, "pose_too_small", min=MIN_REFERENCE_SIDE)
        return self.texts.error_reason(lang, code)

    def _queued(self, lang: str, scene: str, faces: int) -> str:
        texts = self.texts
        reply = texts(lang, "pose_queued_scene", scene=escape(scene)) if scene else texts(lang, "pose_queued")
        if faces == 0:
            reply += "\n\n" + texts(lang, "pose_no_person")
        if CYRILLIC.search(scene):
            reply += "\n\n" + texts(lang, "pose_english_hint")
        return reply
