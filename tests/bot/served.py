"""The bot wired exactly as `python -m bot` wires it (bot.app._serve: polling or webhook, metrics, admin
menus, the blocked gate), on the test's event loop, without a worker: tests finish jobs themselves."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

from tests.bot.conftest import InProcessBot


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedBot(InProcessBot):
    async def start(self) -> ServedBot:
        from bot.app import _serve
        from bot.telegram import create_bot
        from jobs.aio import open_db

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = await open_db(self.settings.db_path)
        self.bot = create_bot(self.settings)
        self.tasks = []
        await _serve(
            self.bot,
            self.db,
            self.settings,
            lambda coro, name: self.tasks.append(asyncio.create_task(coro, name=name)),
        )
        return self

    async def scrape(self) -> tuple[str, str]:
        """GET /metrics in a thread (the server runs on this event loop): (content type, body)."""
        url = f"http://{self.settings.metrics_host}:{self.settings.metrics_port}/metrics"

        def get() -> tuple[str, str]:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.headers["Content-Type"], response.read().decode()

        return await asyncio.to_thread(get)


def metric(body: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format (labels in any order), or None when absent."""
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, value = line.rsplit(" ", 1)
        sample_name, _, label_text = sample.partition("{")
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        if sample_name == name and {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return None
