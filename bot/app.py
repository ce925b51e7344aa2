"""Wiring: the database, the Bot, the Dispatcher and the long-running loops, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.chat_action import show_progress
from bot.commands import set_admin_commands, set_commands
from bot.delivery import DeliveryLoop
from bot.forget import Forgetter, sweep_orphans
from bot.handlers import get_routers
from bot.inbox import InboxProcessor, UpdatePoller
from bot.intake import Intake
from bot.limits import NoticeLimiter
from bot.metrics import BotMetrics, MetricsServer
from bot.middlewares import BlockedMiddleware, UserMiddleware
from bot.pose_intake import POSE_WAIT_S, PoseDesk
from bot.selfie_intake import SelfieDesk
from bot.settings import BotSettings
from bot.supervisor import PainterState, WorkerSupervisor
from bot.telegram import create_bot
from bot.texts import Texts
from bot.webhook import WebhookRefused, WebhookServer
from jobs.aio import AsyncDb, AsyncJobQueue, open_db
from jobs.files import open_files
from jobs.ops_store import OpsStore
from jobs.pose_store import PoseStore
from jobs.store import BotStore
from jobs.training_store import TrainingStore

log = logging.getLogger("artbooth.bot")


class FatalError(Exception):
    """Something only the operator can fix (a rejected token): one line, exit code 2."""


def build_dispatcher(
    bot: Bot, db: AsyncDb, settings: BotSettings, painter: PainterState | None = None
) -> Dispatcher:
    store, queue, texts = BotStore(db), AsyncJobQueue(db), Texts()
    painter = painter or PainterState()  # embedded: the supervisor's; external: always ready
    dispatcher = Dispatcher(
        db=db,
        store=store,
        queue=queue,
        texts=texts,
        settings=settings,
        intake=Intake(
            bot, store, queue, texts, settings, NoticeLimiter(settings.notice_interval_s), painter=painter
        ),
    )
    files = open_files(settings.shared)  # FILE_STORE: DATA_DIR, or the database for several hosts
    training = TrainingStore(db, settings.data_dir, files)
    dispatcher["files"] = files
    dispatcher["painter"] = painter
    dispatcher["training"] = training
    dispatcher["selfies"] = SelfieDesk(bot, store, training, queue, texts, settings)
    dispatcher["forgetter"] = Forgetter(store, queue, files, settings.worker_lease_s)
    poses = dispatcher["poses"] = PoseStore(db, POSE_WAIT_S)  # /pose (bot/handlers/pose.py)
    dispatcher["poses_desk"] = PoseDesk(
        bot, store, queue, training, poses, texts, settings, dispatcher["intake"]
    )
    dispatcher["ops"], dispatcher["metrics"] = OpsStore(db), BotMetrics()
    dispatcher.update.outer_middleware(UserMiddleware())
    dispatcher.update.outer_middleware(BlockedMiddleware())  # after UserMiddleware: it needs the language
    dispatcher.include_routers(*get_routers())
    return dispatcher


async def run(settings: BotSettings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = await open_db(settings.database)  # applies migrations/ (the same runner as the worker)
    bot = create_bot(settings)
    painter = PainterState()
    supervisor = WorkerSupervisor(settings, painter=painter) if settings.inference == "embedded" else None
    stop = _stop_on_signals()  # from the first moment: SIGTERM while Telegram is unreachable stops us too
    tasks: list[asyncio.Task] = []

    def start(coro: Coroutine[Any, Any, None], name: str) -> None:
        tasks.append(asyncio.create_task(coro, name=name))

    try:
        if supervisor:
            start(supervisor.run(), "worker supervisor")  # the worker loads its models meanwhile
        start(_serve(bot, db, settings, start, painter), "start-up")
        await _until_stopped_or_crash(tasks, stop)
    finally:
        await _shutdown(tasks, supervisor)
        await bot.session.close()
        await db.close()
        log.info("bot stopped")


async def _serve(
    bot: Bot, db: AsyncDb, settings: BotSettings, start: Any, painter: PainterState | None = None
) -> None:
    """Once Telegram answers: the dispatcher, the command menu, and the loops that poll, handle and deliver."""
    me = await _get_me(bot)
    api = settings.telegram_api_base or "api.telegram.org"
    log.info("bot @%s (id %s) on %s, inference %s", me.username, me.id, api, settings.inference)
    dispatcher = build_dispatcher(bot, db, settings, painter)
    store, texts, metrics = dispatcher["store"], dispatcher["texts"], dispatcher["metrics"]
    bot.session.middleware(metrics.session_middleware())  # innermost: sees every refused attempt
    try:
        await set_commands(bot, texts)
        await set_admin_commands(bot, texts, settings.admin_ids)
    except TelegramAPIError as error:
        log.warning("set_my_commands failed: %s", error)
    await sweep_orphans(store, dispatcher["files"])
    processor = InboxProcessor(dispatcher, bot, store)
    delivery = DeliveryLoop(bot, store, dispatcher["queue"], texts, settings, metrics=metrics)
    start(processor.run(), "inbox processor")  # first replays what a crash interrupted
    await _receive_updates(bot, dispatcher, settings, processor, start)
    start(delivery.run(), "delivery")
    if settings.metrics_port is not None:
        server = MetricsServer(metrics, dispatcher["ops"], settings.metrics_host, settings.metrics_port)
        await _listen(server.start(), "METRICS", settings.metrics_host, settings.metrics_port)
        start(server.serve(), "metrics")
    start(show_progress(bot, store, settings.chat_action_every_s), "chat action")


async def _receive_updates(
    bot: Bot, dispatcher: Dispatcher, settings: BotSettings, processor: InboxProcessor, start: Any
) -> None:
    """Long polling (the default), or a webhook: both only record updates in the inbox for the processor."""
    allowed_updates = dispatcher.resolve_used_update_types()
    if not settings.webhook_url:
        try:  # getUpdates answers 409 while a webhook is set: after webhook mode, polling must remove it
            await bot.delete_webhook(drop_pending_updates=False)
        except TelegramAPIError as error:
            log.warning("deleteWebhook failed: %s", error)
        poller = UpdatePoller(
            bot,
            dispatcher["store"],
            timeout_s=settings.polling_timeout_s,
            allowed_updates=allowed_updates,
            on_recorded=processor.wake,
        )
        start(poller.run(), "update poller")
        return
    webhook = WebhookServer(bot, dispatcher["store"], settings, on_recorded=processor.wake)
    await _listen(webhook.start(), "WEBHOOK", settings.webhook_host, settings.webhook_port)
    start(webhook.serve(), "webhook")
    try:
        await webhook.register(allowed_updates)
    except WebhookRefused as error:
        raise FatalError(str(error)) from error


async def _listen(starting: Coroutine[Any, Any, None], what: str, host: str, port: int) -> None:
    try:
        await starting
    except OSError as error:  # the port is taken, the address is not this host's...
        raise FatalError(f"cannot listen on {what}_HOST:{what}_PORT = {host}:{port}: {error}") from error


async def _get_me(bot: Bot) -> Any:
    delay = 1.0
    while True:
        try:
            return await bot.get_me()
        except TelegramUnauthorizedError as error:
            raise FatalError(
                "Telegram rejected BOT_TOKEN (401 Unauthorized): check the token with @BotFather"
            ) from error
        except TelegramAPIError as error:
            log.warning("cannot reach Telegram (%s); retrying in %.0fs", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _until_stopped_or_crash(tasks: list[asyncio.Task], stop: asyncio.Event) -> None:
    """Until a signal, or until a loop dies (its error is raised). The start-up task may end; it starts others."""
    stopper = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                tasks.remove(task)
                if not task.cancelled() and (error := task.exception()) is not None:
                    if isinstance(error, TelegramUnauthorizedError):
                        raise FatalError("Telegram rejected BOT_TOKEN (401 Unauthorized)") from error
                    raise error
        log.info("signal received: stopping")
    finally:
        stopper.cancel()


async def _shutdown(tasks: list[asyncio.Task], supervisor: WorkerSupervisor | None) -> None:
    """Whole tree gone within 20 s: handlers get 5 s (in InboxProcessor.stop), the worker 12 s, in parallel."""
    stopping_worker = asyncio.create_task(supervisor.stop()) if supervisor else None
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if stopping_worker:
        with contextlib.suppress(Exception):
            await stopping_worker
