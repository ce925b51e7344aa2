"""A photo becomes a job: limits, download into DATA_DIR/uploads, enqueue, tell the user where it stands.

Runs once per Telegram update, and again if a crash interrupted it (bot/inbox.py replays), so every step
is idempotent: the job's dedup_key is 'tg:<update_id>', the upload's name comes from the update.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message

from bot.fast_mode import Schedule, choose_schedule
from bot.limits import NoticeLimiter, check_admission
from bot.settings import BotSettings
from bot.supervisor import PainterState
from bot.texts import Texts
from contract.kinds import INTERACTIVE_PRIORITY, JobKind, StylizeRequest
from contract.styles import ARTISTS, get_style
from jobs.aio import AsyncJobQueue
from jobs.files import open_files
from jobs.store import BotStore, UserRow

log = logging.getLogger("artbooth.bot.intake")

VARIANTS_OF_ONE_STYLE = 4
_STYLE_CAPTION = re.compile(r"^/style(?:@\w+)?(?:\s+(?P<style>\S+))?", re.IGNORECASE)
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/heic": "heic",
    "image/heif": "heif",
}


@dataclass(frozen=True)
class IncomingImage:
    file_id: str
    file_unique_id: str
    size: int | None
    extension: str

    @classmethod
    def from_message(cls, message: Message) -> IncomingImage:
        if message.photo:
            largest = message.photo[-1]
            return cls(largest.file_id, largest.file_unique_id, largest.file_size, "jpg")
        document = message.document
        assert document is not None
        suffix = Path(document.file_name or "").suffix.lower().lstrip(".")
        extension = _EXTENSIONS.get(document.mime_type or "") or (suffix if suffix.isalnum() else "") or "img"
        return cls(document.file_id, document.file_unique_id, document.file_size, extension)


def caption_style(caption: str | None) -> tuple[bool, str | None]:
    """(asked, style id) for a caption like '/style banksy'; asked is False when the caption says nothing."""
    match = _STYLE_CAPTION.match((caption or "").strip())
    if not match or not match.group("style"):
        return False, None
    return True, match.group("style").lower()


def job_styles(style: str | None) -> tuple[tuple[str, ...], int]:
    """(styles, variants per style): the four artists once each, or one style four times."""
    if style is None:
        return ARTISTS, 1
    return (style,), VARIANTS_OF_ONE_STYLE


class Intake:
    """Turns accepted photos into jobs. One instance lives in the dispatcher's workflow_data."""

    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        queue: AsyncJobQueue,
        texts: Texts,
        settings: BotSettings,
        notices: NoticeLimiter,
        *,
        painter: PainterState | None = None,
    ):
        self.bot, self.store, self.queue, self.texts, self.settings = bot, store, queue, texts, settings
        self.notices = notices
        self.files = open_files(settings.shared)
        self.painter = painter or PainterState()
        # An album's caption comes with its first photo only: remember its one-off style for the rest.
        self._album_styles: dict[str, tuple[bool, str | None]] = {}

    def _one_off_style(self, message: Message) -> tuple[bool, str | None]:
        asked, style = caption_style(message.caption)
        group = message.media_group_id
        if group is not None:
            if asked:
                if len(self._album_styles) > 1000:
                    self._album_styles.clear()
                self._album_styles[group] = (asked, style)
            elif not message.caption:
                asked, style = self._album_styles.get(group, (False, None))
        return asked, style

    async def accept(self, message: Message, update_id: int, user: UserRow, lang: str) -> None:
        texts, settings = self.texts, self.settings
        dedup_key = f"tg:{update_id}"
        # Before the replay check: after a crash, the album's first photo is replayed to say its style again.
        asked, one_off = self._one_off_style(message)
        if (job_id := await self.store.find_job_by_dedup(dedup_key)) is not None:
            await self.store.add_delivery(job_id, message.message_id)  # a replay after a crash
            return

        if asked and one_off != "all" and get_style(one_off or "") is None:
            if message.caption or message.media_group_id is None:  # once per album: its captioned photo
                await message.answer(texts.style_unknown(lang, one_off or ""))
            return
        style = None if one_off == "all" else (one_off or user.style)

        refusal = await check_admission(self.queue, settings, user.id)
        if refusal is not None:
            if self.notices.allow(user.id):
                await message.answer(texts(lang, refusal.value, limit=settings.max_jobs_per_user))
            return

        image = IncomingImage.from_message(message)
        max_mb = settings.max_download_mb
        if image.size is not None and image.size > settings.max_download_bytes:
            await message.answer(_too_big(texts, lang, image.size, max_mb))
            return
        relative = Path("uploads") / str(user.id) / f"{update_id}-{image.file_unique_id}.{image.extension}"
        try:
            await _download(self.bot, image.file_id, settings.data_dir / relative)
            await asyncio.to_thread(self.files.publish, relative.as_posix())  # for workers on other hosts
        except TelegramBadRequest as error:
            if "too big" in error.message.lower():
                await message.answer(_too_big(texts, lang, image.size, max_mb))
            else:
                log.warning("update %s: download failed: %s", update_id, error)
                await message.answer(texts(lang, "download_failed"))
            return

        styles, variants = job_styles(style)
        schedule = await choose_schedule(self.queue, settings, user)
        request = StylizeRequest(
            relative.as_posix(),
            styles=styles,
            variants=variants,
            steps=settings.stylize_steps or None,
            fast=schedule.request_fast,
        )
        job_id, created = await enqueue_interactive(
            self.queue,
            self.store,
            JobKind.STYLIZE,
            request.to_payload(),
            user_id=user.id,
            chat_id=message.chat.id,
            reply_to=message.message_id,
            dedup_key=dedup_key,
        )
        if not created:
            return
        log.info("update %s: job %s queued for user %s (%s)", update_id, job_id, user.id, style or "artists")
        await self._say_queued(message, job_id, lang, style, schedule)

    async def _say_queued(
        self, message: Message, job_id: int, lang: str, style: str | None, schedule: Schedule
    ) -> None:
        texts = self.texts
        what = (
            texts(lang, "what_one", name=texts.style_name(lang, style))
            if style
            else texts(lang, "what_artists")
        )
        ahead = await self.queue.jobs_ahead(job_id)
        if self.painter.not_ready:  # the job stays queued: painted once the worker starts
            await message.answer(texts(lang, "painter_not_ready"))
            return
        if ahead:
            reply = texts(lang, "queued_position", position=ahead, what=what)
        else:
            reply = texts(lang, "queued_now", what=what)
        if schedule.busy:  # fast mode under a burst: say why this album will look quicker
            reply += "\n\n" + texts(lang, "fast_busy")
        await message.answer(reply)
        await self.bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO)


async def enqueue_interactive(
    queue: AsyncJobQueue,
    store: BotStore,
    kind: JobKind,
    payload: dict,
    *,
    user_id: int,
    chat_id: int,
    reply_to: int | None,
    dedup_key: str,
) -> tuple[int, bool]:
    """Queue a job the user waits for, and its delivery (answering `reply_to`): (job id, created).

    A replay finds the same job (dedup_key) and delivery row, so a crash between the two writes loses nothing.
    """
    job_id, created = await queue.enqueue(
        kind, payload, user_id=user_id, chat_id=chat_id, priority=INTERACTIVE_PRIORITY, dedup_key=dedup_key
    )
    await store.add_delivery(job_id, reply_to)
    return job_id, created


async def _download(bot: Bot, file_id: str, target: Path) -> None:
    """getFile, then the bytes into target (atomically: a crash leaves no half-written upload)."""
    file = await bot.get_file(file_id)
    if not file.file_path:
        raise TelegramBadRequest(method=None, message="getFile gave no file_path (file is too big?)")  # type: ignore[arg-type]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    await bot.download_file(file.file_path, destination=partial, timeout=120)
    partial.replace(target)


def _too_big(texts: Texts, lang: str, size: int | None, max_mb: int) -> str:
    """The size when the update carried it (a document may come without file_size), else just the limit."""
    if not size:
        return texts(lang, "file_too_big_unknown", max_mb=max_mb)
    return texts(lang, "file_too_big", size_mb=f"{size / 1024 / 1024:.1f}", max_mb=max_mb)
