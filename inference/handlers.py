"""Job kind → the function that runs it. Each takes (ctx, job) and returns the job's result dict.

Handlers are named by import path and imported on first use, so a worker starts without loading
the training or evaluation code it may never need.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from inference.styles import ARTISTS, STYLES
from jobs.errors import BAD_REQUEST, JobError
from jobs.models import Job

if TYPE_CHECKING:
    from inference.worker import JobContext

Handler = Callable[["JobContext", Job], dict[str, Any]]

HANDLERS: dict[str, str] = {
    "stylize": "inference.handlers:run_stylize_job",
    "train": "inference.train.job:run_train_job",
    "portrait": "inference.portrait:run_portrait_job",
}
INTERACTIVE_PRIORITY = 10


def resolve_handler(kind: str) -> Handler:
    target = HANDLERS.get(kind)
    if target is None:
        raise JobError(BAD_REQUEST, f"unknown job kind {kind!r}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def payload_value(payload: dict[str, Any], key: str, cast: Callable[[Any], Any], default: Any = None) -> Any:
    """payload[key] as `cast` (int, float, as_bool), `default` when absent or null; BAD_REQUEST if malformed."""
    value = payload.get(key)
    if value is None:
        return default
    try:
        return cast(value)
    except (TypeError, ValueError) as error:
        expected = {int: "a whole number", float: "a number", as_bool: "true or false"}.get(cast, "valid")
        raise JobError(BAD_REQUEST, f"{key} must be {expected}, not {value!r}") from error


def as_bool(value: Any) -> bool:
    """JSON true/false, 0/1, or the strings "true"/"false" (bool("false") would be True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ValueError(value)


def run_stylize_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    from inference.images import load_photo, read_upload
    from inference.stylize import stylize

    payload = job.payload
    styles = payload.get("styles") or list(ARTISTS)
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise JobError(BAD_REQUEST, f"unknown styles: {', '.join(unknown)}")
    if not isinstance(payload.get("image"), str):
        raise JobError(BAD_REQUEST, "no image given")
    data = read_upload(ctx.data_dir / payload["image"])  # read once: decoded, and hashed for the seed
    photo = load_photo(data)
    # The same photo gives the same pictures, also when the job is retried after a crash.
    seed = payload_value(payload, "seed", int)
    if seed is None:
        seed = zlib.crc32(data)
    if not ctx.report(0.05, "stylizing"):
        from inference.worker import JobStopped

        raise JobStopped()
    result = stylize(
        ctx.models,
        photo,
        styles=tuple(styles),
        variants=payload_value(payload, "variants", int, 1),
        seed=seed,
        steps=payload_value(payload, "steps", int, 30),
        mode=payload.get("mode", "img2img"),
        max_batch=ctx.max_batch,
    )
    images = [
        {"path": ctx.save_image(image, f"{i:02d}_{style}.jpg"), "style": style}
        for i, (style, image) in enumerate(result.images)
    ]
    return {"caption": result.caption, "images": images, "seconds": round(result.seconds, 3), "seed": seed}
