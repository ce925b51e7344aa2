"""Several hosts (issue 13): the bot and two workers, each with its own DATA_DIR (no shared disk), on one
PostgreSQL database, with the loopback Bot API. Skipped without TEST_DATABASE_URL (tests/postgres.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.bot.conftest import make_photo
from tests.bot.fake_telegram import FakeTelegram, TgUser
from tests.bot.processes import REPO, BotProcess

pytestmark = pytest.mark.timeout(400)
ALBUM_TIMEOUT = 150.0
USER_FOLDERS = ("uploads", "selfies", "loras", "results")


class WorkerHost:
    """`python -m inference worker` on a 'host' of its own: its own DATA_DIR, the shared database."""

    def __init__(self, data_dir: Path, database_url: str, models_dir: Path):
        if not data_dir.exists():
            data_dir.mkdir(parents=True)
            (data_dir / "models").symlink_to(models_dir, target_is_directory=True)  # the model cache only
        self.data_dir, self.log_path = data_dir, data_dir.parent / f"{data_dir.name}.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "MODELS": "tiny",
            "DEVICE": "cpu",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inference", "worker", "--lease", "3"],
                cwd=data_dir.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def user_files(self) -> list[Path]:
        return [p for d in USER_FOLDERS for p in (self.data_dir / d).rglob("*") if p.is_file()]

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture(scope="module")
def models_dir(tiny_settings) -> Path:
    return tiny_settings.data_dir / "models"


def rows(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def test_bot_and_two_workers_on_other_hosts_share_one_postgres(tmp_path, postgres_url, models_dir):
    telegram = FakeTelegram().start()
    users = [TgUser(3001, "en"), TgUser(3002, "ru"), TgUser(3003, "en")]
    photos: list[int] = []
    env = {"INFERENCE": "external", "DATABASE_URL": postgres_url, "WORKER_LEASE_S": "3"}
    bot = BotProcess(telegram, tmp_path / "bot-host", **env).start()
    workers = [WorkerHost(tmp_path / f"worker-{i}", postgres_url, models_dir) for i in (1, 2)]

    def send_photos(n: int) -> None:
        for i in range(n):
            user = users[len(photos) % len(users)]
            telegram.push_message(user, photo=make_photo(color=(len(photos) * 40 % 256, 90, 60 + i)))
            photos.append(telegram.updates[-1]["message"]["message_id"])

    def albums_for_all() -> None:
        telegram.wait_for(
            lambda: len(telegram.sent("sendMediaGroup")) >= len(photos),
            ALBUM_TIMEOUT,
            f"{len(photos)} albums\n{bot.log()[-3000:]}",
        )

    try:
        # 1. Every photo is answered with its album exactly once; both workers take part.
        send_photos(6)
        albums_for_all()
        # 2. kill -9 of a worker in the middle of a job: the other one finishes it.
        send_photos(3)
        running = telegram.wait_for(
            lambda: rows(postgres_url, "SELECT id, worker FROM jobs WHERE state = 'running'"),
            60,
            "a job running",
        )
        job_id, owner = running[0]
        victim = next(w for w in workers if owner.endswith(f":{w.process.pid}"))
        victim.kill9()
        albums_for_all()
        # The host starts its worker again: what the killed one had copied down does not stay.
        workers[workers.index(victim)] = WorkerHost(victim.data_dir, postgres_url, models_dir)
        time.sleep(2.0)  # and nothing more comes
        answered = Counter(
            c.params["reply_parameters"]["message_id"] for c in telegram.sent("sendMediaGroup")
        )
        assert answered == Counter(photos), answered
        ((state, attempts, finisher),) = rows(
            postgres_url, "SELECT state, attempts, worker FROM jobs WHERE id = %s", (job_id,)
        )
        assert state == "done" and attempts == 2 and finisher != owner
        workers_used = {r[0] for r in rows(postgres_url, "SELECT DISTINCT worker FROM jobs")}
        assert len(workers_used) == 2

        # 3. /forget: nothing of the user in the database, or in any host's folders.
        user = users[0]
        jobs = [r[0] for r in rows(postgres_url, "SELECT id FROM jobs WHERE user_id = %s", (user.id,))]
        assert rows(postgres_url, "SELECT 1 FROM files WHERE path LIKE %s", (f"uploads/{user.id}/%",))
        telegram.push_message(user, text="/forget")
        telegram.wait_for(lambda: telegram.sent("sendMessage", chat_id=user.id)[-1:], 30, "the question")
        telegram.push_callback(user, "forget:1")
        telegram.wait_for(lambda: telegram.sent("editMessageText", chat_id=user.id), 30, "the confirmation")
        for table, column in (("users", "id"), ("jobs", "user_id"), ("inbox", "user_id")):
            assert not rows(postgres_url, f"SELECT 1 FROM {table} WHERE {column} = %s", (user.id,)), table
        stored = [r[0] for r in rows(postgres_url, "SELECT path FROM files")]
        mine = [f"{d}/{user.id}/" for d in ("uploads", "selfies", "loras")] + [f"results/{j}/" for j in jobs]
        assert not [p for p in stored if p.startswith(tuple(mine))]
        assert any(p.startswith("uploads/3002/") for p in stored)  # the others keep theirs
        bot_files = [p for d in USER_FOLDERS for p in (bot.data_dir / d).rglob("*") if p.is_file()]
        assert not [p for p in bot_files if str(user.id) in p.parts or p.parent.name in map(str, jobs)]
        # Workers keep no copies once a job is over (the restarted one dropped its predecessor's).
        telegram.wait_for(
            lambda: [w.user_files() for w in workers] == [[], []], 60, "no user files on workers"
        )
    finally:
        bot.cleanup()
        for worker in workers:
            worker.kill9()
        telegram.stop()
