"""An edited message gets an answer: the bot acts on new messages only, so say how to ask again.

Re-running a command or re-painting a photo on an edit would be a second job for one request (the first
may be painted already), and a style caption edited after the album went out cannot change it. Telling
the user to send it anew is honest and leaves no dead end.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bot.texts import Texts


async def edited(message: Message, texts: Texts, lang: str) -> None:
    key = "edited_photo" if message.photo or message.document else "edited_message"
    await message.reply(texts(lang, key))


def create_router() -> Router:
    router = Router(name=__name__)
    # In a group, only what the bot would have answered as a new message: photos and commands.
    router.edited_message.register(
        edited, (F.chat.type == "private") | F.photo | F.document | F.text.startswith("/")
    )
    return router
