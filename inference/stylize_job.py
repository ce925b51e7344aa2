"""The worker's `stylize` handler: a StylizeRequest in, the album's pictures under results/<job id>/ out.

Split so the batch runner (inference.batch_runner) can do the CPU parts beside the GPU: `read_stylize`
(the request, the upload's bytes, its seed and its bucket from the header: the look-ahead thread), the
decoding (`buckets.decode_and_fit`: the decode processes) joined by `prepared_from`, the painting (the GPU,
several jobs per `stylize_batch`), `write_stylize` (JPEGs and the result: the writer thread).
`prepare_stylize` does the first three in a row, for a job run alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from contract.images import read_upload
from contract.kinds import STYLIZE_STEPS, StyledImage, StylizeRequest, StylizeResult
from inference.buckets import decode_and_fit, photo_bucket
from inference.context import JobContext, JobStopped
from jobs.models import Job


@dataclass
class PreparedStylize:
    ctx: JobContext
    request: StylizeRequest
    item: Any  # inference.stylize.StylizeItem, its photo already at its bucket's size
    key: tuple  # jobs with the same key can share a UNet batch: (size, steps, mode, fast)


@dataclass
class StylizeHead:
    """A claimed stylize job before its photo is decoded: what the batch runner groups jobs by."""

    ctx: JobContext
    request: StylizeRequest
    data: bytes  # the upload, read once: decoded, and hashed for the seed
    seed: int
    key: tuple | None  # as PreparedStylize's, from the photo's header; None with ARTBOOTH_BUCKETS=0


def read_stylize(ctx: JobContext, job: Job) -> StylizeHead:
    request = StylizeRequest.from_payload(job.payload)
    data = read_upload(ctx.fetch(request.image))
    # The same photo gives the same pictures, also when the job is retried after a crash.
    seed = request.seed if request.seed is not None else zlib.crc32(data)
    models = ctx.models
    key = None
    if getattr(models.settings, "buckets", True):
        key = _key(photo_bucket(data, models.resolution), request)
    return StylizeHead(ctx, request, data, seed, key)


def prepared_from(head: StylizeHead, photo: Any) -> PreparedStylize:
    """`photo`: the head's upload decoded and fitted (buckets.decode_and_fit, maybe in a decode process)."""
    from inference.stylize import StylizeItem

    request = head.request
    item = StylizeItem(photo, request.styles, request.variants, head.seed)
    return PreparedStylize(head.ctx, request, item, _key(photo.size, request))


def prepare_stylize(ctx: JobContext, job: Job) -> PreparedStylize:
    head = read_stylize(ctx, job)
    models = ctx.models
    return prepared_from(head, decode_and_fit(head.data, models.resolution, head.key is not None))


def _key(size: tuple[int, int], request: StylizeRequest) -> tuple:
    return (tuple(size), request.steps or STYLIZE_STEPS, request.mode, bool(request.fast))


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
