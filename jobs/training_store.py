"""training_sessions, selfies and users.lora (migrations/0003_training.sql): the /train flow's rows.

A session starts with /train ('collecting'), takes the accepted selfies and becomes 'training' with /done
or the last photo; the train job's delivery ends it. One statement per write (see jobs/store.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from contract.kinds import DEFAULT_CLASS, DEFAULT_TOKEN
from jobs.aio import AsyncDb, fetch_all, fetch_one
from jobs.files import LocalFiles


@dataclass(frozen=True)
class Session:
    user_id: int
    chat_id: int
    cls: str | None
    state: str  # 'collecting' | 'training'
    job_id: int | None
    progress_message: int | None
    started_at: float
    training_at: float | None


class TrainingStore:
    """training_sessions, selfies and users.lora (migrations/0003_training.sql). One statement per write."""

    def __init__(self, db: AsyncDb, data_dir: Path, files: LocalFiles | None = None):
        self.db, self.data_dir = db, data_dir
        self.files = files or LocalFiles(data_dir)  # jobs/files.py: where selfies and LoRAs live

    # -- sessions -----------------------------------------------------------------------------
    async def session(self, user_id: int) -> Session | None:
        row = await fetch_one(self.db, "SELECT * FROM training_sessions WHERE user_id = ?", (user_id,))
        return _session(row) if row else None

    async def sessions_training(self) -> list[Session]:
        rows = await fetch_all(self.db, "SELECT * FROM training_sessions WHERE state = 'training'")
        return [_session(r) for r in rows]

    async def open_session(self, user_id: int, chat_id: int) -> Session:
        await self.db.execute(
            "INSERT INTO training_sessions (user_id, chat_id, started_at) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            (user_id, chat_id, time.time()),
        )
        return await self.session(user_id)  # type: ignore[return-value]

    async def set_class(self, user_id: int, cls: str) -> None:
        await self.db.execute("UPDATE training_sessions SET class = ? WHERE user_id = ?", (cls, user_id))

    async def mark_training(self, user_id: int, job_id: int) -> None:
        await self.db.execute(
            "UPDATE training_sessions SET state = 'training', job_id = ?, training_at = ? WHERE user_id = ?",
            (job_id, time.time(), user_id),
        )

    async def set_progress_message(self, user_id: int, message_id: int) -> None:
        await self.db.execute(
            "UPDATE training_sessions SET progress_message = ? WHERE user_id = ?", (message_id, user_id)
        )

    async def back_to_collecting(self, user_id: int, job_id: int) -> None:
        """The training failed or was stopped: keep the photos, so /done can try again."""
        await self.db.execute(
            "UPDATE training_sessions SET state = 'collecting', job_id = NULL, progress_message = NULL,"
            " training_at = NULL WHERE user_id = ? AND job_id = ?",
            (user_id, job_id),
        )

    async def close_session(self, user_id: int, *, delete_selfies: bool) -> None:
        await self.db.execute("DELETE FROM training_sessions WHERE user_id = ?", (user_id,))
        if delete_selfies:
            await self.delete_selfies(user_id)

    # -- selfies ------------------------------------------------------------------------------
    async def selfie_count(self, user_id: int) -> int:
        return (await fetch_one(self.db, "SELECT COUNT(*) FROM selfies WHERE user_id = ?", (user_id,)))[0]

    async def has_selfie_from(self, update_id: int) -> bool:
        return await fetch_one(self.db, "SELECT 1 FROM selfies WHERE update_id = ?", (update_id,)) is not None

    async def fingerprints(self, user_id: int) -> list[int]:
        rows = await fetch_all(self.db, "SELECT fingerprint FROM selfies WHERE user_id = ?", (user_id,))
        return [int(r[0], 16) for r in rows]

    async def selfie_paths(self, user_id: int) -> list[str]:
        rows = await fetch_all(self.db, "SELECT path FROM selfies WHERE user_id = ? ORDER BY id", (user_id,))
        return [r[0] for r in rows]

    async def add_selfie(self, user_id: int, update_id: int, path: str, fingerprint: int) -> None:
        await self.db.execute(
            "INSERT INTO selfies (user_id, update_id, path, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (update_id) DO NOTHING",
            (user_id, update_id, path, f"{fingerprint:016x}", time.time()),
        )

    async def delete_selfies(self, user_id: int) -> None:
        """Rows first, then the folder: a crash in between leaves files no row points to (swept by /forget)."""
        await self.db.execute("DELETE FROM selfies WHERE user_id = ?", (user_id,))
        await asyncio.to_thread(self.files.delete, [f"selfies/{user_id}"])

    def selfie_dir(self, user_id: int) -> Path:
        return self.data_dir / "selfies" / str(user_id)

    # -- the personal model -------------------------------------------------------------------
    async def lora(self, user_id: int) -> tuple[str, str, str] | None:
        """(path, class, token) of the user's LoRA, when they have one and its file is there."""
        row = await fetch_one(
            self.db, "SELECT lora, lora_class, lora_token FROM users WHERE id = ?", (user_id,)
        )
        if not row or not row[0] or not await asyncio.to_thread(self.files.exists, row[0]):
            return None
        return row[0], row[1] or DEFAULT_CLASS, row[2] or DEFAULT_TOKEN

    async def set_lora(self, user_id: int, path: str, cls: str, token: str) -> None:
        await self.db.execute(
            "UPDATE users SET lora = ?, lora_class = ?, lora_token = ? WHERE id = ?",
            (path, cls, token, user_id),
        )


def _session(row) -> Session:
    return Session(
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        cls=row["class"],
        state=row["state"],
        job_id=row["job_id"],
        progress_message=row["progress_message"],
        started_at=row["started_at"],
        training_at=row["training_at"],
    )
