"""/forget: every row and file of one user, gone.

Rows: the user, their jobs and those jobs' deliveries, their selfies and training session, and their
handled inbox rows (plus the /forget update itself; updates that came after it are new requests and
stay). Files: uploads/<user>, selfies/<user>, loras/<user>, results/<job id> of each of their jobs.

Jobs still queued or running are cancelled first. A running job learns of it at its next heartbeat or
progress report, but a worker may still write a last file (a stylize job saves its pictures before it
reports; a train job its LoRA): its finish() is refused, because the row is gone, yet the file lands.
So the same paths are deleted again a few times over the following minutes (`lease_s` and later),
while such a late write can still happen. The worker itself also deletes results/<job id> when its
outcome is refused. Should the bot restart within those minutes, `sweep_orphans` at start-up removes any
folder whose user or job no longer exists.

Files go through jobs/files.py: with FILE_STORE=database the same names are deleted from the `files`
table as well as from this host's DATA_DIR (workers keep no copies once a job is over).
"""

from __future__ import annotations

import asyncio
import logging

from jobs.aio import AsyncJobQueue
from jobs.files import LocalFiles
from jobs.store import BotStore

log = logging.getLogger("artbooth.bot.forget")

USER_DIRS = ("uploads", "selfies", "loras")


class Forgetter:
    def __init__(self, store: BotStore, queue: AsyncJobQueue, files: LocalFiles, lease_s: float):
        self.store, self.queue, self.files = store, queue, files
        self.sweep_after_s = (lease_s, 2 * lease_s + 5, 300.0)
        self._sweeps: set[asyncio.Task] = set()

    async def forget(self, user_id: int, update_id: int) -> None:
        states = await self.queue.user_job_states(user_id)
        job_ids = list(states)
        running = [job_id for job_id, state in states.items() if state == "running"]
        for job_id, state in states.items():
            if state in ("queued", "running"):
                await self.queue.cancel(job_id, user_id=user_id)
        await self.store.delete_user(user_id, update_id)
        await asyncio.to_thread(self.files.delete, self.paths(user_id, job_ids))
        log.info("user %s forgotten: %s jobs, %s running", user_id, len(job_ids), len(running))
        if running:
            task = asyncio.create_task(self._sweep_later(user_id, job_ids))
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)

    def paths(self, user_id: int, job_ids: list[int]) -> list[str]:
        return [f"{d}/{user_id}" for d in USER_DIRS] + [f"results/{job_id}" for job_id in job_ids]

    async def _sweep_later(self, user_id: int, job_ids: list[int]) -> None:
        """Late writes of the cancelled jobs: their results, and a LoRA nobody trains now.

        uploads/ and selfies/ are left alone: a user who comes back at once sends new photos there.
        """
        waited = 0.0
        for at in self.sweep_after_s:
            await asyncio.sleep(at - waited)
            waited = at
            paths = [f"results/{job_id}" for job_id in job_ids]
            if not await self.store.training_or_lora(user_id):
                paths.append(f"loras/{user_id}")
            await asyncio.to_thread(self.files.delete, paths)


async def sweep_orphans(store: BotStore, files: LocalFiles) -> list[str]:
    """Files of users and jobs that no longer exist (a /forget whose late sweep a restart cut short)."""
    users, jobs = await store.user_ids(), await store.job_ids()
    owners = [(d, users) for d in USER_DIRS] + [("results", jobs)]
    orphans = await asyncio.to_thread(_orphans, files, owners)
    if orphans:
        await asyncio.to_thread(files.delete, orphans)
        log.info("deleted %s folders of forgotten users and jobs", len(orphans))
    return orphans


def _orphans(files: LocalFiles, owners: list[tuple[str, set[int]]]) -> list[str]:
    found = []
    for top, alive in owners:
        found += [f"{top}/{name}" for name in files.owners(top) if name.isdigit() and int(name) not in alive]
    return found
