"""INFERENCE=embedded: one inference worker as a child process, restarted with back-off when it dies.

The worker runs in its own process group, so stopping it reaches anything it started: SIGTERM (it
finishes or releases its job), then SIGKILL after worker_stop_timeout_s. If the bot itself is killed
with -9, bot/orphan_guard.py has the kernel send the worker a SIGTERM. When the worker dies on its own,
its group is killed before the next one starts. In the container, tini (PID 1) reaps what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from bot.settings import BotSettings

log = logging.getLogger("artbooth.bot.supervisor")


class WorkerSupervisor:
    def __init__(
        self,
        settings: BotSettings,
        *,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
    ):
        self.settings = settings
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.healthy_after_s = healthy_after_s
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._stopping = False

    def command(self) -> list[str]:
        worker = [sys.executable, "-m", "inference", "worker", "--lease", str(self.settings.worker_lease_s)]
        return [sys.executable, "-m", "bot.orphan_guard", str(os.getpid()), "--", *worker]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.settings.shared.to_env()}

    async def run(self) -> None:
        backoff = self.min_backoff_s
        while not self._stopping:
            started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                *self.command(),
                env=self.environment(),
                start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL,
            )
            self.starts += 1
            log.info("worker started (pid %s)", self.process.pid)
            code = await self.process.wait()
            # What the dead worker started (a killed worker's grandchild) must not live beside the next one.
            _signal_group(self.process.pid, signal.SIGKILL)
            if self._stopping:
                return
            if time.monotonic() - started > self.healthy_after_s:
                backoff = self.min_backoff_s
            log.error("worker exited with code %s; restarting in %.0fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return
        log.info("stopping the worker (pid %s)", process.pid)
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.settings.worker_stop_timeout_s)
        except TimeoutError:
            log.warning("worker did not stop in %ss: killing it", self.settings.worker_stop_timeout_s)
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # anything the worker left behind in its group


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
