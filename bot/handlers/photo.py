"""A photo, or an image sent as a file: queue it (bot/intake.py does the work)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message, Update

from bot.intake import Intake
from bot.storage import UserRow


async def image(message: Message, event_update: Update, intake: Intake, user_row: UserRow, lang: str) -> None:
    await intake.accept(message, event_update.update_id, user_row, lang)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(image, F.photo)
    router.message.register(image, F.document.mime_type.startswith("image/"))
    return router
