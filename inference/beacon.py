"""The worker's heartbeat row (jobs/workers.py): the bot's /metrics learns from it that this worker is up,
how often it restarted, and how much GPU memory it holds.

A thread of its own, not a step of the worker loop: one diffusion call or a training step can hold the
loop for longer than a beat, and a worker busy painting is up. Reading torch's allocator counters from
another thread is safe and does not synchronise the GPU.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from inference.gpu_memory import held
from jobs.db import DatabaseError, Target, connect
from jobs.workers import BEAT_EVERY_S, WorkerBeats, slot_name

log = logging.getLogger("artbooth.worker.beacon")


class WorkerBeacon(threading.Thread):
    def __init__(
        self, database: str | Path | Target, device: str, *, every_s: float = BEAT_EVERY_S, models: Any = None
    ):
        super().__init__(daemon=True, name="worker-beacon")
        self.database, self.device, self.every_s, self.models = database, device, every_s, models
        self.name_in_db = slot_name(device)
        self.done = threading.Event()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)

    def run(self) -> None:
        conn = connect(self.database)
        beats = WorkerBeats(conn, self.name_in_db, os.getpid())
        try:
            beats.started()
            while True:
                try:
                    beats.beat(*held(self.models))
                except DatabaseError as error:  # locked past busy_timeout: the next beat will do
                    log.warning("worker heartbeat failed (%s)", error)
                if self.done.wait(self.every_s):
                    break
            beats.stopped()
        except DatabaseError:
            log.exception("worker heartbeat stopped")
        finally:
            conn.close()
