"""The worker's `stylize` handler: a StylizeRequest in, the album's pictures under results/<job id>/ out.

Split in three so the batch runner (inference.batch_runner) can do the CPU parts on its threads:
`prepare_stylize` (read, decode, fit to the shape bucket: the look-ahead thread), the painting (the GPU,
several jobs per `stylize_batch`), `write_stylize` (JPEGs and the result: the writer thread).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract.images import read_upload
from contract.kinds import STYLIZE_STEPS, StyledImage, StylizeRequest, StylizeResult
from inference.buckets import decode_and_fit
from inference.context import JobContext, JobStopped
from jobs.models import Job


@dataclass
class PreparedStylize:
    ctx: JobContext
    request: StylizeRequest
    item: Any  # inference.stylize.StylizeItem, its photo already at its bucket's size
    key: tuple  # jobs with the same key can share a UNet batch: (size, steps, mode, fast)


def prepare_stylize(
    ctx: JobContext, job: Job, decode: Callable[..., Any] = decode_and_fit
) -> PreparedStylize:
    """`decode(data, resolution, use_buckets)`: the photo fitted to its bucket (the batch runner's runs it in
    a decode process, away from the GIL the painting thread needs)."""
    from inference.stylize import StylizeItem

    request = StylizeRequest.from_payload(job.payload)
    data = read_upload(ctx.fetch(request.image))  # read once: decoded, and hashed for the seed
    models = ctx.models
    photo = decode(data, models.resolution, getattr(models.settings, "buckets", True))
    # The same photo gives the same pictures, also when the job is retried after a crash.
    seed = request.seed if request.seed is not None else zlib.crc32(data)
    item = StylizeItem(photo, request.styles, request.variants, seed)
    key = (photo.size, request.steps or STYLIZE_STEPS, request.mode, bool(request.fast))
    return PreparedStylize(ctx, request, item, key)


def write_stylize(prepared: PreparedStylize, result: Any) -> dict[str, Any]:
    ctx = prepared.ctx
    images = [
        StyledImage(ctx.save_image(image, f"{i:02d}_{style}.jpg"), style)
        for i, (style, image) in enumerate(result.images)
    ]
    seconds = round(result.seconds, 3)
    return StylizeResult(result.caption, images, seconds, prepared.item.seed, fast=result.fast).to_dict()


def run_stylize_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    from inference.stylize import stylize

    prepared = prepare_stylize(ctx, job)
    if not ctx.report(0.05, "stylizing"):
        raise JobStopped()
    item = prepared.item
    result = stylize(
        ctx.models,
        item.image,
        styles=item.styles,
        variants=item.variants,
        seed=item.seed,
        steps=prepared.request.steps or STYLIZE_STEPS,
        mode=prepared.request.mode,
        max_batch=ctx.max_batch,
        fast=bool(prepared.request.fast),
    )
    return write_stylize(prepared, result)
