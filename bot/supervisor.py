"""INFERENCE=embedded: one inference worker as a child process, restarted with back-off when it dies.

The worker runs in its own process group, so stopping it reaches anything it started: SIGTERM (it
finishes or releases its job), then SIGKILL after worker_stop_timeout_s. If the bot itself is killed
with -9, bot/orphan_guard.py has the kernel send the worker a SIGTERM. When the worker dies on its own,
its group is killed before the next one starts. In the container, tini (PID 1) reaps what is left.

A worker that exits with CONFIG_ERROR_EXIT cannot start as configured (weights missing, no such device):
restarting it at once only repeats its error line. The supervisor logs one line that says so, tries
again every `config_retry_s` (the operator may have fixed it meanwhile), and sets `painter.not_ready`,
which the bot's replies read: users hear that the painter is not ready, and their photos stay queued.
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
from contract.settings import CONFIG_ERROR_EXIT

log = logging.getLogger("artbooth.bot.supervisor")

READY_AFTER_S = 15.0  # a worker alive this long got past loading its models


class PainterState:
    """What the bot tells users about the painter. `not_ready` is set by the supervisor (embedded mode)."""

    def __init__(self) -> None:
        self.not_ready = False


class WorkerSupervisor:
    def __init__(
        self,
        settings: BotSettings,
        *,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
        config_retry_s: float | None = None,
        painter: PainterState | None = None,
    ):
        self.settings = settings
        self.config_retry_s = settings.worker_config_retry_s if config_retry_s is None else config_retry_s
        self.painter = painter or PainterState()
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
            code = await self._wait_marking_ready(self.process)
            # What the dead worker started (a killed worker's grandchild) must not live beside the next one.
            _signal_group(self.process.pid, signal.SIGKILL)
            if self._stopping:
                return
            if code == CONFIG_ERROR_EXIT:
                self._config_error()
                await asyncio.sleep(self.config_retry_s)
                continue
            if time.monotonic() - started > self.healthy_after_s:
                backoff = self.min_backoff_s
            log.error("worker exited with code %s; restarting in %.0fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _wait_marking_ready(self, process: asyncio.subprocess.Process) -> int:
        """The worker's exit code; a worker that outlives its loading clears `not_ready` (it was fixed)."""
        try:
            return await asyncio.wait_for(asyncio.shield(process.wait()), READY_AFTER_S)
        except TimeoutError:
            if self.painter.not_ready:
                log.warning("worker is running again: the painter is ready")
            self.painter.not_ready = False
            return await process.wait()

    def _config_error(self) -> None:
        if not self.painter.not_ready:  # one line per outage, not one per retry
            log.error(
                "worker cannot start as configured (exit code %s; its error line is above): users are told "
                "the painter is not ready and their photos stay queued; trying again every %.0fs",
                CONFIG_ERROR_EXIT,
                self.config_retry_s,
            )
        self.painter.not_ready = True

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
