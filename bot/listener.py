"""An aiohttp listener inside the bot's event loop: the metrics endpoint and the webhook both are one."""

from __future__ import annotations

import asyncio

from aiohttp import web


class Listener:
    """`listen()` binds `application()` to host:port; `serve()` holds it open until cancelled, then closes
    it (requests that arrive meanwhile are refused; Telegram keeps webhook updates and retries)."""

    shutdown_timeout = 1.0

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        raise NotImplementedError

    async def listen(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(
            self.application(), access_log=None, shutdown_timeout=self.shutdown_timeout
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def serve(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if self._runner:
                await self._runner.cleanup()
