"""Record every update before Telegram forgets it, then handle it; replay what a crash interrupted.

aiogram's own polling advances getUpdates' offset as soon as it has *yielded* an update and runs handlers
as tasks, so the next getUpdates call confirms updates whose handlers may not have run yet: a kill -9 then
loses them. Here the two halves are split:

- `UpdatePoller` calls getUpdates, writes each update into the `inbox` table, and only then moves the
  offset (which Telegram learns with the next call). An update is in SQLite before it is acknowledged.
- `InboxProcessor` feeds recorded updates to the dispatcher and marks each 'done' when its handler has
  returned. At start-up every row still 'new' is fed again. Handlers are idempotent per update
  (a photo's job has dedup_key 'tg:<update_id>'), so a replay does not queue a photo twice.

Updates of one user are handled in order (one lock per user), different users concurrently.

getUpdates' answer is read as plain JSON and each update is parsed on its own: aiogram parses the whole
batch at once, so one update it cannot read (a field it requires that an older self-hosted Bot API server
does not send) failed the batch, and retrying the same offset wedged the bot for everyone. An unreadable
update is recorded like any other, and the processor sets it aside at its first attempt (logged once; its
sender, when the JSON names one, hears that the message could not be handled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError, TelegramUnauthorizedError
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.backoff import Backoff, BackoffConfig
from pydantic import ValidationError

from bot.loops import IterationGuard
from jobs.store import BotStore, InboxRow

log = logging.getLogger("artbooth.bot.inbox")

MAX_HANDLER_ATTEMPTS = 3  # an update whose handler keeps failing (or crashing the bot) is set aside
PRUNE_EVERY_S = 3600.0


def update_user_id(update: Update) -> int | None:
    try:
        user = getattr(update.event, "from_user", None)
    except UpdateTypeLookupError:
        return None
    return user.id if user else None


def raw_user_id(raw: dict[str, Any]) -> int | None:
    """The sender of an update aiogram cannot parse, read from its JSON (message.from, poll_answer.user...)."""
    for value in raw.values():
        if isinstance(value, dict):
            sender = value.get("from") or value.get("user")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return sender["id"]
    return None


class GetRawUpdates(GetUpdates):
    """getUpdates whose answer stays JSON, so that the updates are parsed one by one (see the docstring)."""

    __returning__ = list[dict[str, Any]]


class UpdatePoller:
    def __init__(
        self,
        bot: Bot,
        store: BotStore,
        *,
        timeout_s: int,
        allowed_updates: list[str] | None,
        on_recorded: Any = None,
    ):
        self.bot, self.store = bot, store
        self.timeout_s = timeout_s
        self.allowed_updates = allowed_updates
        self.on_recorded = on_recorded or (lambda: None)

    async def run(self) -> None:
        offset: int | None = None
        offset_known = False
        backoff = Backoff(BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1))
        guard = IterationGuard(log, "update poller")
        while True:
            try:
                if not offset_known:
                    offset, offset_known = await self.store.next_offset(), True
                batch = await self._get_updates(offset, backoff)
                updates, unreadable = self.parse(batch)
                if updates or unreadable:
                    await self.record(updates)
                    await self.record_unreadable(unreadable)
                    last = max([u.update_id for u in updates] + [u["update_id"] for u in unreadable])
                    offset = last + 1  # confirmed with the next call, after they are on disk
                    self.on_recorded()
            except TelegramUnauthorizedError:
                raise  # a revoked token: nothing to retry
            except Exception:  # noqa: BLE001 — the database: the same updates come again, recorded once
                await guard.failed()
                continue
            guard.succeeded()

    async def _get_updates(self, offset: int | None, backoff: Backoff) -> list[dict[str, Any]]:
        request = GetRawUpdates(offset=offset, timeout=self.timeout_s, allowed_updates=self.allowed_updates)
        try:
            updates = await self.bot(request, request_timeout=self.timeout_s + 30)
        except TelegramUnauthorizedError:
            raise
        except Exception as error:  # noqa: BLE001 — Telegram unreachable, 5xx, another poller (409)...
            level = logging.ERROR if isinstance(error, TelegramConflictError) else logging.WARNING
            log.log(
                level,
                "getUpdates failed (%s: %s); retrying in %.1fs",
                type(error).__name__,
                error,
                backoff.next_delay,
            )
            await backoff.asleep()
            return []
        backoff.reset()
        return updates

    def parse(self, batch: list[dict[str, Any]]) -> tuple[list[Update], list[dict[str, Any]]]:
        """(updates, unreadable ones). Without an integer update_id there is nothing to record or confirm."""
        updates, unreadable = [], []
        for raw in batch:
            try:
                updates.append(Update.model_validate(raw, context={"bot": self.bot}))
            except ValidationError as error:
                if not isinstance(raw.get("update_id"), int):
                    log.error("an update without an update_id, skipped: %.300s", raw)
                    continue
                log.error(
                    "update %s: cannot be read (%s error(s), first: %s); recorded and set aside",
                    raw["update_id"],
                    error.error_count(),
                    _first_error(error),
                )
                unreadable.append(raw)
        return updates, unreadable

    async def record_unreadable(self, raws: Iterable[dict[str, Any]]) -> None:
        """Recorded as received: the processor fails to parse it once and sets it aside (see _handle)."""
        for raw in raws:
            await self.store.record_update(raw["update_id"], raw_user_id(raw), raw)

    async def record(self, updates: Iterable[Update]) -> None:
        for update in updates:
            payload = update.model_dump(mode="json", exclude_unset=True, by_alias=True)
            await self.store.record_update(update.update_id, update_user_id(update), payload)


class InboxProcessor:
    def __init__(self, dispatcher: Dispatcher, bot: Bot, store: BotStore, *, concurrency: int = 8):
        self.dispatcher, self.bot, self.store = dispatcher, bot, store
        self._slots = asyncio.Semaphore(concurrency)
        self._user_locks: dict[int | None, tuple[asyncio.Lock, int]] = {}
        self._in_flight: dict[int, asyncio.Task] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        next_prune = 0.0
        guard = IterationGuard(log, "inbox processor")
        try:
            while True:
                try:
                    if time.monotonic() >= next_prune:  # handled updates are kept a few days, then forgotten
                        await self.store.prune_inbox()
                        next_prune = time.monotonic() + PRUNE_EVERY_S
                    self._wake.clear()
                    for row in await self.store.pending_updates():
                        if row.update_id not in self._in_flight:
                            self._start(row)
                except Exception:  # noqa: BLE001 — a locked database...: the rows are still there next time
                    await guard.failed()
                    continue
                guard.succeeded()
                # New updates wake us at once; the timeout picks up retries whose time has come.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        finally:
            await self.stop()

    def _start(self, row: InboxRow) -> None:
        task = asyncio.create_task(self._handle_logged(row))
        self._in_flight[row.update_id] = task
        task.add_done_callback(lambda _t, uid=row.update_id: self._in_flight.pop(uid, None))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let running handlers finish for a moment; the rest stay 'new' and run after the restart."""
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _handle_logged(self, row: InboxRow) -> None:
        try:
            await self._handle(row)
        except asyncio.CancelledError:
            raise
        except Exception:  # the inbox's own bookkeeping failed: the row stays 'new' and is tried again
            log.exception("update %s: could not be handled", row.update_id)

    async def _handle(self, row: InboxRow) -> None:
        async with self._user_lock(row.user_id), self._slots:
            attempts = await self.store.update_started(row.update_id)
            if attempts > MAX_HANDLER_ATTEMPTS:
                log.error("update %s: handler failed %s times, setting it aside", row.update_id, attempts - 1)
                await self._give_up(row)
                return
            try:
                update = Update.model_validate(row.payload, context={"bot": self.bot})
            except ValidationError as error:  # the same JSON will never parse: no retries
                log.error("update %s: unreadable (%s), set aside", row.update_id, _first_error(error))
                await self._give_up(row)
                return
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("update %s: handler failed (attempt %s)", row.update_id, attempts)
                if attempts >= MAX_HANDLER_ATTEMPTS:
                    await self._give_up(row)
                else:  # a download that met a network error, a locked database...: try again soon
                    await self.store.update_retry_at(row.update_id, time.time() + 2.0**attempts)
            else:
                await self.store.update_handled(row.update_id)

    async def _give_up(self, row: InboxRow) -> None:
        """No dead end: the user hears that this message could not be handled (our fault, not theirs)."""
        await self.store.update_handled(row.update_id, failed=True)
        if row.user_id is None:
            return
        user = await self.store.get_user(row.user_id)
        lang = user.lang if user else "en"
        chat_id = user.chat_id if user and user.chat_id else row.user_id
        with contextlib.suppress(Exception):  # best effort: Telegram may be what failed
            await self.bot.send_message(chat_id, self.dispatcher["texts"](lang, "update_failed"))

    def _user_lock(self, user_id: int | None) -> _UserLock:
        return _UserLock(self._user_locks, user_id)


class _UserLock:
    """One asyncio.Lock per user, dropped when nobody holds or waits for it. FIFO: updates keep their order."""

    def __init__(self, locks: dict[int | None, tuple[asyncio.Lock, int]], user_id: int | None):
        self.locks, self.user_id = locks, user_id

    async def __aenter__(self) -> None:
        lock, users = self.locks.get(self.user_id, (asyncio.Lock(), 0))
        self.locks[self.user_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.locks[self.user_id][0].release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self.locks[self.user_id]
        if users == 1:
            del self.locks[self.user_id]
        else:
            self.locks[self.user_id] = (lock, users - 1)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
