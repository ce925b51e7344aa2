"""pose_waits (migrations/0007_pose.sql): a /pose that waits for its reference photo. One statement per write."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True)
class PoseWait:
    user_id: int
    chat_id: int
    scene: str | None
    created_at: float


class PoseStore:
    def __init__(self, db: aiosqlite.Connection, max_age_s: float):
        self.db, self.max_age_s = db, max_age_s

    async def wait(self, user_id: int, chat_id: int, scene: str | None) -> None:
        """Wait for a reference (a second /pose replaces the first one's scene and restarts the clock)."""
        await self.db.execute(
            "INSERT INTO pose_waits (user_id, chat_id, scene, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET chat_id = excluded.chat_id, scene = excluded.scene,"
            " created_at = excluded.created_at",
            (user_id, chat_id, scene, time.time()),
        )

    async def waiting(self, user_id: int) -> PoseWait | None:
        """The user's /pose, unless it went stale (a photo an hour later is a style request again)."""
        row = await (
            await self.db.execute(
                "SELECT user_id, chat_id, scene, created_at FROM pose_waits"
                " WHERE user_id = ? AND created_at >= ?",
                (user_id, time.time() - self.max_age_s),
            )
        ).fetchone()
        return PoseWait(*row) if row else None

    async def done(self, user_id: int) -> bool:
        """The reference came (or /pose cancel): True when there was a /pose waiting."""
        cursor = await self.db.execute("DELETE FROM pose_waits WHERE user_id = ?", (user_id,))
        return cursor.rowcount > 0
