"""Flood limits: who may queue another photo, and how often the bot may say "no"."""

from __future__ import annotations

import time
from enum import StrEnum

from bot.settings import BotSettings
from jobs.aio import AsyncJobQueue


class Refusal(StrEnum):
    TOO_MANY = "too_many"  # the user's own limit of unfinished jobs
    QUEUE_FULL = "queue_full"  # everybody's queue


async def check_admission(queue: AsyncJobQueue, settings: BotSettings, user_id: int) -> Refusal | None:
    """None when the user may queue one more job. Admins are only held back by the global cap."""
    if (
        user_id not in settings.admin_ids
        and await queue.count_interactive(user_id) >= settings.max_jobs_per_user
    ):
        return Refusal.TOO_MANY
    if await queue.count_queued() >= settings.max_queue:
        return Refusal.QUEUE_FULL
    return None


class NoticeLimiter:
    """At most one notice per user per interval: a burst of 50 photos gets one "too many", not 47.

    In memory on purpose: after a restart one more notice is harmless.
    """

    def __init__(self, interval_s: float, clock=time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[int, float] = {}

    def allow(self, user_id: int) -> bool:
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget users who were quiet for a while
            self._last = {u: t for u, t in self._last.items() if now - t < self.interval_s}
        return True
