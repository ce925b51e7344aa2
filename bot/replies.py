"""Answers Telegram may refuse although nothing is wrong on our side, and that must not fail a handler.

A callback query can only be answered within seconds of the tap: after a crash replay it is "too old",
yet the work the button asked for must still be done. An edit is refused when the text is the same
(a double tap) or the message is too old or gone: say it anew instead.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message

log = logging.getLogger("artbooth.bot.replies")

_NOT_EDITABLE = ("message can't be edited", "message to edit not found")


async def answer_quietly(callback: CallbackQuery, text: str | None = None, **kwargs: Any) -> None:
    """Stop the button's spinner; a query Telegram no longer knows (too old, invalid id) is not an error."""
    try:
        await callback.answer(text, **kwargs)
    except TelegramBadRequest as error:
        log.debug("callback %s: answer refused: %s", callback.id, error.message)


async def safe_edit(message: Message, text: str, **kwargs: Any) -> Message | bool | None:
    """Edit `message` to `text`; unchanged text is fine, and a message that cannot be edited gets a new one."""
    try:
        return await message.edit_text(text, **kwargs)
    except TelegramBadRequest as error:
        reason = error.message.lower()
        if "message is not modified" in reason:
            return None
        if any(marker in reason for marker in _NOT_EDITABLE):
            log.debug("message %s: cannot edit (%s): sending a new one", message.message_id, error.message)
            return await message.answer(text, **kwargs)
        raise
