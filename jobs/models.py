"""The job row as both sides see it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: JobState
    priority: int
    user_id: int | None
    chat_id: int | None
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    progress: float
    progress_text: str | None
    eta_s: float | None
    attempts: int
    max_attempts: int
    worker: str | None
    lease_until: float | None
    dedup_key: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    turn: int = 0  # the user's turn within the priority (jobs/sql.py: ENQUEUE)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> Job:
        data = dict(row)
        data["state"] = JobState(data["state"])
        data["payload"] = json.loads(data["payload"] or "{}")
        data["result"] = json.loads(data["result"]) if data["result"] else None
        return cls(**data)
