"""The bot's tables: users, the update inbox, deliveries, and /forget's deletes. (Queue calls: jobs.aio.)

Every statement is one autocommitted write: the connection is shared by concurrent tasks, so a
BEGIN … COMMIT spanning awaits would swallow other tasks' statements. Each step is idempotent instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from jobs import sql as jobs_sql
from jobs.aio import AsyncDb, fetch_all, fetch_one, is_postgres


@dataclass(frozen=True)
class UserRow:
    id: int
    chat_id: int | None
    lang: str
    lang_fixed: bool
    style: str | None
    created_at: float
    fast: bool = False  # chose fast mode (the few-step schedule) with /settings


@dataclass(frozen=True)
class InboxRow:
    update_id: int
    user_id: int | None
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class DueDelivery:
    job_id: int
    attempts: int
    reply_to: int | None
    job_state: str


class BotStore:
    def __init__(self, db: AsyncDb):
        self.db = db

    # -- users ---------------------------------------------------------------------------------
    async def get_user(self, user_id: int) -> UserRow | None:
        row = await fetch_one(self.db, "SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def upsert_user(self, user_id: int, chat_id: int | None, lang: str) -> UserRow:
        """Create the user, or follow their Telegram language (unless they chose one with /lang)."""
        await self.db.execute(
            """
            INSERT INTO users (id, chat_id, lang, created_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                chat_id = COALESCE(excluded.chat_id, users.chat_id),
                lang = CASE WHEN users.lang_fixed != 0 THEN users.lang ELSE excluded.lang END
            """,
            (user_id, chat_id, lang, time.time()),
        )
        return await self.get_user(user_id)  # type: ignore[return-value]

    async def set_style(self, user_id: int, style: str | None) -> None:
        await self.db.execute("UPDATE users SET style = ? WHERE id = ?", (style, user_id))

    async def set_fast(self, user_id: int, fast: bool) -> None:
        await self.db.execute("UPDATE users SET fast = ? WHERE id = ?", (int(fast), user_id))

    async def set_lang(self, user_id: int, lang: str) -> None:
        await self.db.execute("UPDATE users SET lang = ?, lang_fixed = 1 WHERE id = ?", (lang, user_id))

    # -- inbox ---------------------------------------------------------------------------------
    async def record_update(self, update_id: int, user_id: int | None, payload: dict[str, Any]) -> bool:
        cur = await self.db.execute(
            "INSERT INTO inbox (update_id, user_id, payload, received_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (update_id) DO NOTHING",
            (update_id, user_id, json.dumps(payload, ensure_ascii=False), time.time()),
        )
        return cur.rowcount == 1

    async def next_offset(self) -> int | None:
        """The getUpdates offset that confirms everything already recorded (None on a fresh database)."""
        row = await fetch_one(self.db, "SELECT MAX(update_id) FROM inbox")
        return row[0] + 1 if row and row[0] is not None else None

    async def pending_updates(self, limit: int = 200) -> list[InboxRow]:
        rows = await fetch_all(
            self.db,
            "SELECT update_id, user_id, payload, attempts FROM inbox"
            " WHERE state = 'new' AND next_try_at <= ? ORDER BY update_id LIMIT ?",
            (time.time(), limit),
        )
        return [InboxRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def update_started(self, update_id: int) -> int:
        row = await fetch_one(
            self.db,
            "UPDATE inbox SET attempts = attempts + 1 WHERE update_id = ? RETURNING attempts",
            (update_id,),
        )
        return row[0]

    async def update_handled(self, update_id: int, *, failed: bool = False) -> None:
        await self.db.execute(
            "UPDATE inbox SET state = ?, handled_at = ? WHERE update_id = ?",
            ("failed" if failed else "done", time.time(), update_id),
        )

    async def update_retry_at(self, update_id: int, when: float) -> None:
        await self.db.execute("UPDATE inbox SET next_try_at = ? WHERE update_id = ?", (when, update_id))

    async def prune_inbox(self, older_than_s: float = 3 * 86400) -> int:
        """Forget handled updates (Telegram itself keeps unconfirmed ones for 24 h); keep the newest for the offset."""
        cur = await self.db.execute(
            "DELETE FROM inbox WHERE state != 'new' AND handled_at < ?"
            " AND update_id < (SELECT MAX(update_id) FROM inbox)",
            (time.time() - older_than_s,),
        )
        return cur.rowcount

    # -- deliveries ----------------------------------------------------------------------------
    async def add_delivery(self, job_id: int, reply_to: int | None) -> None:
        await self.db.execute(
            "INSERT INTO deliveries (job_id, reply_to, updated_at) VALUES (?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
            (job_id, reply_to, time.time()),
        )

    async def due_deliveries(self, limit: int = 50) -> list[DueDelivery]:
        """Pending deliveries whose job is over (done, failed or cancelled) and whose retry time has come."""
        rows = await fetch_all(
            self.db,
            """
            SELECT d.job_id, d.attempts, d.reply_to, j.state FROM deliveries AS d JOIN jobs AS j ON j.id = d.job_id
            WHERE d.state = 'pending' AND d.next_try_at <= ? AND j.state IN ('done', 'failed', 'cancelled')
            ORDER BY d.job_id LIMIT ?
            """,
            (time.time(), limit),
        )
        return [DueDelivery(*r) for r in rows]

    async def claim_delivery(self, job_id: int) -> bool:
        """pending → sending. From here until mark_sent, a crash leaves the row 'sending' (see resume_sending)."""
        cur = await self.db.execute(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?"
            " WHERE job_id = ? AND state = 'pending'",
            (time.time(), job_id),
        )
        return cur.rowcount == 1

    async def mark_sent(self, job_id: int, message_ids: list[int]) -> None:
        await self.db.execute(
            "UPDATE deliveries SET state = 'sent', message_ids = ?, updated_at = ? WHERE job_id = ?",
            (json.dumps(message_ids), time.time(), job_id),
        )

    async def retry_delivery(self, job_id: int, when: float, *, count_attempt: bool = True) -> None:
        await self.db.execute(
            "UPDATE deliveries SET state = 'pending', next_try_at = ?, updated_at = ?,"
            " attempts = attempts - ? WHERE job_id = ?",
            (when, time.time(), 0 if count_attempt else 1, job_id),
        )

    async def give_up_delivery(self, job_id: int) -> None:
        await self.db.execute(
            "UPDATE deliveries SET state = 'gave_up', updated_at = ? WHERE job_id = ?", (time.time(), job_id)
        )

    async def resume_sending(self) -> list[int]:
        """After a crash: deliveries caught between 'sending' and 'sent' go out again (see bot/delivery.py)."""
        rows = await fetch_all(
            self.db,
            "UPDATE deliveries SET state = 'pending', updated_at = ? WHERE state = 'sending' RETURNING job_id",
            (time.time(),),
        )
        return [r[0] for r in rows]

    # -- /forget -------------------------------------------------------------------------------
    async def delete_user(self, user_id: int, update_id: int) -> None:
        """Every row of the user (their jobs must be cancelled first); later updates are new requests and stay."""
        statements = (
            ("DELETE FROM deliveries WHERE job_id IN (SELECT id FROM jobs WHERE user_id = ?)", (user_id,)),
            ("DELETE FROM jobs WHERE user_id = ?", (user_id,)),
            ("DELETE FROM selfies WHERE user_id = ?", (user_id,)),
            ("DELETE FROM training_sessions WHERE user_id = ?", (user_id,)),
            ("DELETE FROM pose_waits WHERE user_id = ?", (user_id,)),
            (
                "DELETE FROM inbox WHERE user_id = ? AND (state != 'new' OR update_id <= ?)",
                (user_id, update_id),
            ),
            ("DELETE FROM users WHERE id = ?", (user_id,)),
        )
        for statement, params in statements:
            await self.db.execute(statement, params)
        if not is_postgres(self.db):
            # secure_delete zeroed the rows in the pages, but the WAL still holds their old copies: a
            # checkpoint writes the pages back and TRUNCATE empties the WAL file (issue 12, item 4).
            await self.db.execute(jobs_sql.CHECKPOINT)

    async def training_or_lora(self, user_id: int) -> bool:
        """Is a training of the user still unfinished, or do they (again) have a personal model?"""
        row = await fetch_one(
            self.db,
            "SELECT 1 FROM jobs WHERE user_id = ? AND kind = 'train' AND state IN ('queued', 'running')"
            " UNION ALL SELECT 1 FROM users WHERE id = ? AND lora IS NOT NULL",
            (user_id, user_id),
        )
        return row is not None

    async def user_ids(self) -> set[int]:
        return {r[0] for r in await fetch_all(self.db, "SELECT id FROM users")}

    async def job_ids(self) -> set[int]:
        return {r[0] for r in await fetch_all(self.db, "SELECT id FROM jobs")}

    async def running_chats(self) -> list[int]:
        rows = await fetch_all(
            self.db, "SELECT DISTINCT chat_id FROM jobs WHERE state = 'running' AND chat_id IS NOT NULL"
        )
        return [r[0] for r in rows]

    async def find_job_by_dedup(self, dedup_key: str) -> int | None:
        row = await fetch_one(self.db, jobs_sql.BY_DEDUP, (dedup_key,))
        return row[0] if row else None


def _user(row: Any) -> UserRow:
    return UserRow(
        id=row["id"],
        chat_id=row["chat_id"],
        lang=row["lang"],
        lang_fixed=bool(row["lang_fixed"]),
        style=row["style"],
        created_at=row["created_at"],
        fast=bool(row["fast"]),
    )
