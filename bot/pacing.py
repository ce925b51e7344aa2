"""Flood control for every send: about 1 message/s per chat and 30/s in all, and a ban holds for everyone.

Telegram answers a send over its limits with 429 and `retry_after`, and until then it refuses (and may
extend the ban for) every further send into that chat. Waiting out the 429 in the one request that got
it was not enough: the "got it" replies, the delivery loop's concurrent albums, the progress edits and the
chat actions kept sending into the same chat during its ban (18–24 sends under a burst of 40 users), and a
reply was dropped after five tries. So every send takes a slot first, and a 429 bans the chat (or, for a
send without a chat, everything) for every sender.

`Pacer` hands out slots: per chat one every `per_chat_s`, in all one every 1/`global_per_s`; slots are
reserved in call order (asyncio runs one task at a time, so the reservation needs no lock) and a sender
whose slot was overtaken by a ban reserves again after it. aiolimiter's leaky bucket would pace too, but
it has no way to hold a bucket shut for a `retry_after`, and the per-chat buckets would need pruning all
the same; the reservation clock below is the whole of what is needed.

`FloodControl` is an aiogram request middleware: the session calls it for every request of the bot, so
handlers' answers, deliveries, progress edits and chat actions are all paced without any of them knowing.
Chat actions are not messages (no per-chat slot) and are cosmetic: skipped during a ban or a long global
queue, never retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction, TelegramMethod
from aiogram.methods.base import Response, TelegramType

log = logging.getLogger("artbooth.bot.pacing")

PACED_PREFIXES = ("Send", "Edit", "Copy", "Forward", "Delete", "Pin", "Unpin", "Stop")
PRUNE_AT = 10_000  # chats remembered before the idle ones are forgotten


class Pacer:
    def __init__(self, per_chat_s: float = 1.0, global_per_s: float = 25.0):
        self.per_chat_s, self.global_interval_s = per_chat_s, 1.0 / global_per_s
        self._chat_next: dict[Any, float] = {}  # chat → when its next slot is free
        self._chat_ban: dict[Any, float] = {}  # chat → until when Telegram refuses sends into it
        self._global_next = 0.0
        self._global_ban = 0.0

    def banned_until(self, chat_id: Any) -> float:
        return max(self._global_ban, self._chat_ban.get(chat_id, 0.0))

    async def acquire(self, chat_id: Any) -> None:
        """Wait for this chat's next slot and a global one, after any ban on either."""
        while True:
            now = time.monotonic()
            slot = max(now, self.banned_until(chat_id), self._chat_next.get(chat_id, 0.0))
            self._chat_next[chat_id] = slot + self.per_chat_s
            global_slot = max(slot, self._global_next)
            self._global_next = global_slot + self.global_interval_s
            if global_slot > now:
                await asyncio.sleep(global_slot - now)
            if self.banned_until(chat_id) <= time.monotonic():  # no ban came while we waited
                self._prune()
                return

    async def acquire_cosmetic(self, chat_id: Any) -> bool:
        """A chat action: not a message, so no per-chat slot, but never into a ban and within the global
        rate; False (nothing reserved) when the chat is banned or the global queue is more than 1 s long."""
        now = time.monotonic()
        global_slot = max(now, self._global_next)
        if self.banned_until(chat_id) > now or global_slot - now > 1.0:
            return False
        self._global_next = global_slot + self.global_interval_s
        if global_slot > now:
            await asyncio.sleep(global_slot - now)
        return self.banned_until(chat_id) <= time.monotonic()

    def ban(self, chat_id: Any, seconds: float) -> None:
        """Telegram said retry_after: nobody sends into the chat (None: anywhere) until it has passed."""
        until = time.monotonic() + seconds
        if chat_id is None:
            self._global_ban = max(self._global_ban, until)
        else:
            self._chat_ban[chat_id] = max(self._chat_ban.get(chat_id, 0.0), until)

    def _prune(self) -> None:
        if len(self._chat_next) < PRUNE_AT:
            return
        now = time.monotonic()
        for table in (self._chat_next, self._chat_ban):
            for chat_id in [c for c, t in table.items() if t < now]:
                del table[chat_id]


def paced_chat(method: TelegramMethod[Any]) -> tuple[bool, Any]:
    """(paced, chat): sends, edits and the like into a chat are paced; getUpdates, getFile... are not."""
    if not type(method).__name__.startswith(PACED_PREFIXES):
        return False, None
    return True, getattr(method, "chat_id", None)


class FloodControl(BaseRequestMiddleware):
    """Every paced request waits for its slot; a 429 bans its chat for all senders and is waited out.

    The request is retried for as long as Telegram asks, so a reply is never dropped; only a single wait
    longer than max_wait_s goes back to the caller (the delivery loop reschedules instead of holding a
    task, a handler is retried by the inbox).
    """

    def __init__(self, pacer: Pacer, max_wait_s: float = 60.0):
        self.pacer, self.max_wait_s = pacer, max_wait_s

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        paced, chat_id = paced_chat(method)
        if not paced:
            return await make_request(bot, method)
        cosmetic = isinstance(method, SendChatAction)
        while True:
            if cosmetic:
                if not await self.pacer.acquire_cosmetic(chat_id):
                    return Response[bool](ok=True, result=True)  # type: ignore[return-value]
            else:
                await self.pacer.acquire(chat_id)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                self.pacer.ban(chat_id, error.retry_after)
                log.warning(
                    "%s to chat %s: flood control, chat held for %ss",
                    type(method).__name__,
                    chat_id,
                    error.retry_after,
                )
                if cosmetic or error.retry_after > self.max_wait_s:
                    raise
