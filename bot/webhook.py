"""Webhook mode: Telegram POSTs each update to us; it goes into the inbox before Telegram hears 200.

A small aiohttp handler of our own rather than aiogram's `SimpleRequestHandler`: that handler either runs
the dispatcher inside the request (`handle_in_background=False`: Telegram waits for a photo's download,
and the webhook answer may carry a Bot API call) or answers 200 first and handles in a task (the default:
a crash after the answer loses the update). Neither records the update first, so we would override its
request path and its `close()` (which closes the bot's session) and keep only the secret check. Here:

1. the `X-Telegram-Bot-Api-Secret-Token` header must equal WEBHOOK_SECRET (constant-time compare), or
   the request is refused with 401 before its body is read, and nothing reaches a handler;
2. the update is written into the `inbox` table (the same table, and `record_update`, as long polling);
3. only then 200. The InboxProcessor (bot/inbox.py) handles it, and replays it after a crash. Telegram
   redelivers on anything but 2xx; a redelivered update_id is recorded once, so it is handled once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramUnauthorizedError
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.inbox import update_user_id
from bot.listener import Listener
from bot.settings import BotSettings
from jobs.store import BotStore

log = logging.getLogger("artbooth.bot.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookRefused(Exception):
    """Telegram will not take our WEBHOOK_URL (not https, a bad port...): the operator must fix it."""


def webhook_path(url: str) -> str:
    """The path we serve: the public URL's (a reverse proxy passes it through unchanged)."""
    return urlsplit(url).path or "/"


class WebhookServer(Listener):
    shutdown_timeout = 2.0

    def __init__(self, bot: Bot, store: BotStore, settings: BotSettings, on_recorded: Callable[[], None]):
        super().__init__()
        assert settings.webhook_url and settings.webhook_secret, "checked by BotSettings"
        self.bot, self.store, self.settings = bot, store, settings
        self.url, self.secret = settings.webhook_url, settings.webhook_secret.get_secret_value()
        self.on_recorded = on_recorded

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post(webhook_path(self.url), self.handle)
        return app

    async def start(self) -> None:
        """Listen first: Telegram may post the moment setWebhook returns."""
        await self.listen(self.settings.webhook_host, self.settings.webhook_port)
        log.info(
            "webhook: listening on %s:%s%s",
            self.settings.webhook_host,
            self.settings.webhook_port,
            webhook_path(self.url),
        )

    async def register(self, allowed_updates: list[str] | None) -> None:
        """setWebhook, retried while Telegram is unreachable; a refusal is the operator's to fix."""
        delay = 1.0
        while True:
            try:
                await self.bot.set_webhook(
                    self.url,
                    secret_token=self.secret,
                    allowed_updates=allowed_updates,
                    drop_pending_updates=False,
                )
                log.info("webhook: Telegram posts updates to %s", self.url)
                return
            except TelegramBadRequest as error:
                raise WebhookRefused(f"Telegram refused WEBHOOK_URL {self.url}: {error.message}") from error
            except TelegramUnauthorizedError:
                raise
            except Exception as error:  # noqa: BLE001 — network, 5xx: keep trying like get_me does
                log.warning("setWebhook failed (%s); retrying in %.0fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def handle(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), self.secret.encode()):
            log.warning("webhook: refused a request without the right secret from %s", request.remote)
            return web.Response(status=401, text="Unauthorized")
        try:
            payload = await request.json()
            update_id = payload["update_id"]
            if not isinstance(update_id, int):
                raise TypeError("update_id is not an integer")
        except (ValueError, KeyError, TypeError) as error:
            return web.Response(status=400, text=f"not an update: {error}")
        try:
            await self.store.record_update(update_id, _user_id(payload, self.bot), payload)
        except Exception:  # a locked database...: not 200, so Telegram delivers it again
            log.exception("webhook: update %s could not be recorded", update_id)
            return web.Response(status=503, text="try again")
        self.on_recorded()
        return web.json_response({})


def _user_id(payload: dict[str, Any], bot: Bot) -> int | None:
    """Whose update it is, for the inbox's per-user order; an update aiogram cannot read is still kept."""
    try:
        return update_user_id(Update.model_validate(payload, context={"bot": bot}))
    except ValidationError:
        return None
