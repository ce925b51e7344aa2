"""/stats, /queue, /block <user id>, /unblock <user id>: for the ids in ADMIN_IDS only.

Everyone else never matches this router's filter, so their "/stats" falls through to the fallback's
"unknown command": nothing hints that admin commands exist.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message

from bot.settings import BotSettings
from bot.texts import Texts
from jobs.aio import AsyncJobQueue
from jobs.ops_store import OpsStore, QueuedJob, Stats

QUEUE_SHOWN = 30  # one message; /stats has the totals


class IsAdmin(Filter):
    async def __call__(self, message: Message, settings: BotSettings) -> bool:
        return message.from_user is not None and message.from_user.id in settings.admin_ids


async def stats(message: Message, texts: Texts, lang: str, ops: OpsStore) -> None:
    await message.answer(format_stats(await ops.stats(), texts, lang))


def format_stats(s: Stats, texts: Texts, lang: str) -> str:
    none = texts(lang, "admin_none")
    kinds = sorted(set(s.queued) | set(s.running))
    by_kind = "".join(f"\n• {k}: {s.queued.get(k, 0)} + {s.running.get(k, 0)}" for k in kinds)
    latency = [
        texts(lang, "admin_latency", kind=row.kind, p50=row.p50_s, p95=row.p95_s, count=row.count)
        for row in s.latency
    ]
    return texts(
        lang,
        "admin_stats",
        users=s.users,
        today=s.albums_today,
        total=s.albums_total,
        queued=sum(s.queued.values()),
        running=sum(s.running.values()),
        by_kind=by_kind,
        failures=", ".join(f"{code} {n}" for code, n in s.failures.items()) or none,
        latency="\n".join(latency) or f"• {none}",
    )


async def queue_list(message: Message, texts: Texts, lang: str, ops: OpsStore) -> None:
    jobs, total = await ops.waiting_jobs(limit=QUEUE_SHOWN)
    if not jobs:
        await message.answer(texts(lang, "admin_queue_empty"))
        return
    lines = [texts(lang, "admin_queue_head", total=total, shown=len(jobs))]
    lines += [_job_line(job, texts, lang) for job in jobs]
    await message.answer("\n".join(lines))


def _job_line(job: QueuedJob, texts: Texts, lang: str) -> str:
    if job.state == "running":
        state = texts(lang, "admin_queue_running", percent=round(job.progress * 100))
    else:
        state = texts(lang, "admin_queue_queued")
    values = dict(id=job.id, kind=job.kind, priority=job.priority, user=job.user_id, attempts=job.attempts)
    return texts(lang, "admin_queue_job", state=state, age=_age(job.age_s), **values)


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _target(command: CommandObject) -> int | None:
    argument = (command.args or "").strip()
    return int(argument) if argument.isdigit() else None


async def block(
    message: Message,
    command: CommandObject,
    texts: Texts,
    lang: str,
    ops: OpsStore,
    queue: AsyncJobQueue,
    settings: BotSettings,
) -> None:
    user = _target(command)
    if user is None:
        await message.answer(texts(lang, "admin_block_usage", command=command.command))
    elif user in settings.admin_ids:
        await message.answer(texts(lang, "admin_block_admin", user=user))
    elif await ops.block(user, by=message.from_user.id):  # type: ignore[union-attr]
        cancelled = await queue.cancel_user_queued(user)  # what they queued before is not painted either
        await message.answer(texts(lang, "admin_blocked", user=user, cancelled=len(cancelled)))
    else:
        await message.answer(texts(lang, "admin_already_blocked", user=user))


async def unblock(message: Message, command: CommandObject, texts: Texts, lang: str, ops: OpsStore) -> None:
    user = _target(command)
    if user is None:
        await message.answer(texts(lang, "admin_block_usage", command=command.command))
    elif await ops.unblock(user):
        await message.answer(texts(lang, "admin_unblocked", user=user))
    else:
        await message.answer(texts(lang, "admin_not_blocked", user=user))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private", IsAdmin())
    router.message.register(stats, Command("stats"))
    router.message.register(queue_list, Command("queue"))
    router.message.register(block, Command("block"))
    router.message.register(unblock, Command("unblock"))
    return router
