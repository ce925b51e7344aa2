"""The worker's `stylize` handler: a StylizeRequest in, the album's pictures under results/<job id>/ out."""

from __future__ import annotations

import zlib
from typing import Any

from contract.images import load_photo, read_upload
from contract.kinds import STYLIZE_STEPS, StyledImage, StylizeRequest, StylizeResult
from inference.context import JobContext, JobStopped
from jobs.models import Job


def run_stylize_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    from inference.stylize import stylize

    request = StylizeRequest.from_payload(job.payload)
    data = read_upload(ctx.fetch(request.image))  # read once: decoded, and hashed for the seed
    photo = load_photo(data)
    # The same photo gives the same pictures, also when the job is retried after a crash.
    seed = request.seed if request.seed is not None else zlib.crc32(data)
    if not ctx.report(0.05, "stylizing"):
        raise JobStopped()
    result = stylize(
        ctx.models,
        photo,
        styles=request.styles,
        variants=request.variants,
        seed=seed,
        steps=request.steps or STYLIZE_STEPS,
        mode=request.mode,
        max_batch=ctx.max_batch,
        fast=bool(request.fast),
    )
    images = [
        StyledImage(ctx.save_image(image, f"{i:02d}_{style}.jpg"), style)
        for i, (style, image) in enumerate(result.images)
    ]
    return StylizeResult(result.caption, images, round(result.seconds, 3), seed, fast=result.fast).to_dict()
