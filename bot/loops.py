"""The long-running loops must outlive one bad iteration (a locked or briefly unwritable database...).

Each loop catches what one iteration raised, logs it with its traceback, waits a growing moment
(1 s up to 30 s) and goes on; a good iteration resets the wait. Cancellation is never caught: it is how
the loops are stopped.
"""

from __future__ import annotations

import logging

from aiogram.utils.backoff import Backoff, BackoffConfig

BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=2.0, jitter=0.1)


class IterationGuard:
    def __init__(self, log: logging.Logger, what: str):
        self.log, self.what = log, what
        self._backoff = Backoff(BACKOFF)

    async def failed(self) -> None:
        """Call from inside `except Exception:`: logs the error, then waits before the next iteration."""
        self.log.exception("%s: iteration failed; going on in %.1fs", self.what, self._backoff.next_delay)
        await self._backoff.asleep()

    def succeeded(self) -> None:
        self._backoff.reset()
