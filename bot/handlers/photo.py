"""A photo, or an image sent as a file: queue it (bot/intake.py does the work)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message, Update

from bot.intake import Intake
from jobs.store import UserRow


async def image(message: Message, event_update: Update, intake: Intake, user_row: UserRow, lang: str) -> None:
    await intake.accept(message, event_update.update_id, user_row, lang)


# Some clients send pictures as application/octet-stream: the file name then tells (the worker still
# decodes the bytes and refuses what is not a picture, with a clear message).
IMAGE_FILE_NAME = r"(?i)\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$"


IMAGE = (
    F.photo
    | F.document.mime_type.startswith("image/")
    | F.document.file_name.regexp(IMAGE_FILE_NAME, mode="search")
)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(image, IMAGE)
    return router
