"""Job kind → the function that runs it. Each takes (ctx, job) and returns the job's result dict.

Handlers are named by import path and imported on first use, so a worker starts without loading
the training or evaluation code it may never need. The kinds and their payloads: contract/kinds.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from contract.kinds import JobKind
from inference.context import JobContext
from jobs.errors import BAD_REQUEST, JobError
from jobs.models import Job

Handler = Callable[[JobContext, Job], dict[str, Any]]

HANDLERS: dict[str, str] = {
    JobKind.STYLIZE: "inference.stylize_job:run_stylize_job",
    JobKind.TRAIN: "inference.train.job:run_train_job",
    JobKind.PORTRAIT: "inference.portrait:run_portrait_job",
    JobKind.POSE: "inference.pose:run_pose_job",
}


def resolve_handler(kind: str) -> Handler:
    target = HANDLERS.get(kind)
    if target is None:
        raise JobError(BAD_REQUEST, f"unknown job kind {kind!r}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
