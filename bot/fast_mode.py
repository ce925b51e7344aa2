"""Which schedule a new album or portrait job gets: the user's choice, or fast mode under a burst.

The burst rule reads the queue's expected wait (jobs/wait.py) against FAST_MODE_WAIT_S. It only decides for
jobs being queued now: nothing already waiting changes, so no album is lost or delayed by the switch.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import BotSettings
from jobs.aio import AsyncJobQueue
from jobs.store import UserRow
from jobs.wait import burst


@dataclass(frozen=True)
class Schedule:
    fast: bool  # the few-step schedule
    busy: bool  # ... because of a burst, not the user's choice: tell them why

    @property
    def request_fast(self) -> bool | None:
        """The request's `fast` field: True, or None for the worker's normal schedule."""
        return True if self.fast else None


async def choose_schedule(queue: AsyncJobQueue, settings: BotSettings, user: UserRow) -> Schedule:
    if user.fast:
        return Schedule(fast=True, busy=False)
    if settings.fast_mode_wait_s <= 0:
        return Schedule(fast=False, busy=False)
    busy = burst(await queue.expected_wait_s(), settings.fast_mode_wait_s)
    return Schedule(fast=busy, busy=busy)
