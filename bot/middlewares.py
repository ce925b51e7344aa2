"""Per-update data: the user's row and language, from one outer middleware on the dispatcher's updates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User

from bot.texts import lang_from_code
from jobs.store import BotStore


class UserMiddleware(BaseMiddleware):
    """Loads (or creates) the sender's row; handlers get `user_row` and `lang`.

    Runs after aiogram's UserContextMiddleware, which puts `event_from_user` and `event_chat` in data.
    """

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is None or user.is_bot:
            return None  # channel posts, anonymous group admins: nobody to paint for or answer
        store: BotStore = data["store"]
        wanted_lang = lang_from_code(user.language_code)
        row = await store.get_user(user.id)
        chat_id = chat.id if chat and chat.type == "private" else None  # where deliveries may always go
        if (
            row is None
            or (not row.lang_fixed and row.lang != wanted_lang)
            or (chat_id and row.chat_id != chat_id)
        ):
            row = await store.upsert_user(user.id, chat_id, wanted_lang)
        data["user_row"] = row
        data["lang"] = row.lang
        return await handler(event, data)
