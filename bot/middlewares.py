"""Per-update data: the user's row and language, from one outer middleware on the dispatcher's updates;
then the blocked users' gate."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, TelegramObject, Update, User

from bot.keyboards import ForgetChoice
from bot.texts import lang_from_code
from jobs.ops_store import OpsStore
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


class BlockedMiddleware(BaseMiddleware):
    """A user an admin blocked (/block) reaches no handler, so nothing is queued for them.

    They are not ignored in silence: the first message after the block gets one polite answer saying
    whom to ask, then at most one a day, so a blocked spammer cannot make the bot spam back.
    Registered after UserMiddleware: the answer is in the user's language.
    """

    NOTICE_EVERY_S = 86400.0

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User = data["event_from_user"]  # UserMiddleware let only updates with a sender through
        ops: OpsStore = data["ops"]
        if not await ops.is_blocked(user.id) or _wants_forget(event):
            return await handler(event, data)
        chat: Chat | None = data.get("event_chat")
        bot: Bot = data["bot"]
        with contextlib.suppress(TelegramAPIError):  # best effort; the update is handled either way
            if isinstance(event, Update) and event.callback_query:
                await bot.answer_callback_query(event.callback_query.id)  # stop the button's spinner
            if chat and chat.type == "private" and await ops.claim_block_notice(user.id, self.NOTICE_EVERY_S):
                await bot.send_message(chat.id, data["texts"](data["lang"], "blocked_notice"))
        return None


def _wants_forget(event: TelegramObject) -> bool:
    """/forget (and its confirmation button) stays open to a blocked user: their data is theirs to delete.

    Nothing is queued by it; the block itself (blocked_users) outlives the forget, or /forget would lift it.
    """
    if not isinstance(event, Update):
        return False
    if event.message and event.message.text:
        return event.message.text.split(maxsplit=1)[0].split("@")[0].lower() == "/forget"
    if event.callback_query and event.callback_query.data:
        return event.callback_query.data.startswith(f"{ForgetChoice.__prefix__}:")
    return False
