"""/pose: portraits of a user (their LoRA) in the pose and composition of a reference photo.

The studies' last step, as a job: the reference's Canny edges go to the ControlNet (inference/control.py),
the person comes from the user's LoRA (the same adapter cache and ownership check as /me, in
inference/portrait.py), and the prompt is the user's token and class, the optional scene, and BLIP's
caption of the reference for context ("a man sitting on a bench in a park").

20 steps, not /me's 30: the ControlNet adds about 40% to every UNet step it steers (the first 16 of
the 20: inference/control.py, CONTROL_END), and DPM-Solver++ 2M has converged by 20 with the composition
already fixed by the edges; four pose portraits then cost about what four /me portraits do
(docs/benchmarks.md).

Why not diffusers' `StableDiffusionControlNetPipeline` (issue 11: four pose portraits in <= 1.0 s on an
H200; the pipeline, even with the LoRA fused, took 1.086 s): it runs the ControlNet and the UNet eagerly,
and an eager SD step at batch 8 is bound by launching its kernels (44-49 ms against 29 ms replayed as a
CUDA graph). So pose portraits are painted as /me's are, by `paint_text2img` (the same noise, scheduler,
guidance and postprocessing as the pipeline) with the pipeline's step, ControlNet and UNet together, as
one call that inference/graphs.py replays as a CUDA graph per shape (`controlled_unet`, inference/control.py).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from contract import kinds
from contract.images import read_upload
from contract.pose import load_reference
from inference.context import JobContext, JobStopped
from inference.control import (
    CONDITIONING_SCALE,
    CONTROL_END,
    control_image,
    controlled_steps,
    controlled_unet,
)
from inference.edges import CANNY_HIGH, CANNY_LOW, canny_edges
from inference.portrait import GUIDANCE, NEGATIVE, _lora_for_job, build_prompt, paint_text2img, users_lora
from jobs.errors import BAD_REQUEST, JobError

if TYPE_CHECKING:
    from jobs.models import Job

POSE_STEPS = 20


@dataclass(frozen=True)
class PoseResult:
    prompt: str
    caption: str  # BLIP's, of the reference
    edges: Image.Image  # the conditioning, at the pictures' size
    images: list[Image.Image]
    seconds: float
    seed: int


def pose_portraits(
    models,
    lora_path: Path,
    reference: Image.Image,
    scene: str = "",
    *,
    token: str | None = None,
    cls: str | None = None,
    caption: str | None = None,
    n: int = kinds.PORTRAITS_PER_JOB,
    seed: int = 0,
    steps: int = POSE_STEPS,
    conditioning_scale: float = CONDITIONING_SCALE,
    control_end: float = CONTROL_END,
    low: int = CANNY_LOW,
    high: int = CANNY_HIGH,
    owner: str = "cli",
    max_batch: int | None = None,
) -> PoseResult:
    """`n` pictures of the LoRA's subject in the reference's pose; seeds seed, seed+1, … (one per image).

    `caption` None: BLIP's caption of the reference. `max_batch` splits the UNet batch (the worker's retry
    after running out of GPU memory) without changing the pictures, as in portrait(). `control_end`: the
    ControlNet steers that share of the steps, from the first (inference/control.py, CONTROL_END).
    """
    from inference.graphs import unet_runner
    from inference.stylize import caption_image, prepare_image

    if not 1 <= n <= 8:
        raise JobError(BAD_REQUEST, "n must be between 1 and 8")
    started = time.perf_counter()
    step = controlled_unet(models, conditioning_scale)  # 0. the ControlNet, loaded on the first pose
    photo = prepare_image(models, reference)  # 1. the reference at the working resolution
    edges = canny_edges(photo, low, high)  # 2. its edges: the conditioning
    caption = caption.strip() if caption and caption.strip() else caption_image(models, photo)  # 3.
    context = ", ".join(part for part in (" ".join(scene.split()), caption) if part)
    with torch.inference_mode():
        edges_in = control_image(models, edges)
        rows = edges_in.repeat(2 * n, 1, 1, 1)  # every UNet row sees the edges, guided or not, any chunk
    keep, plain, calls = controlled_steps(steps, control_end), unet_runner(models), itertools.count()

    def unet(x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """The loop calls it once per step of each chunk (one sampler group): step k of every chunk is
        controlled while k < keep, as diffusers' pipeline keeps the control."""
        if next(calls) % steps < keep:
            return step(x, t, embeds, rows[: len(x)])
        return plain(x, t, embeds)

    with users_lora(models, Path(lora_path), owner) as info:  # 5. the user's LoRA on for this call
        prompt = build_prompt(context, token or info.token, cls or info.cls)  # 4.
        images = paint_text2img(  # 6.
            models,
            prompt,
            NEGATIVE,
            n,
            seed,
            GUIDANCE,
            steps,
            max_batch,
            size=(edges_in.shape[-2], edges_in.shape[-1]),
            unet=unet,
        )
    return PoseResult(prompt, caption, edges, images, time.perf_counter() - started, seed)


def _reference_for_job(ctx: JobContext, job: Job, request: kinds.PoseRequest) -> Image.Image:
    """The reference, which must be one of the requesting user's own uploads."""
    data_dir = Path(ctx.data_dir).resolve()
    path = (data_dir / request.reference).resolve()
    owner = str(job.user_id) if job.user_id is not None else ""
    if not path.is_relative_to(data_dir / "uploads" / owner):
        raise JobError(BAD_REQUEST, "that reference is not one of this user's uploads")
    try:  # through the file store: the bot that received it may be on another host
        local = ctx.fetch(path.relative_to(data_dir).as_posix())
    except FileNotFoundError:
        raise JobError(BAD_REQUEST, "the reference photo is gone") from None
    return load_reference(read_upload(local))


def run_pose_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    """The worker's `pose` handler: a PoseRequest (contract/kinds.py) in, n pictures out."""
    request = kinds.PoseRequest.from_payload(job.payload)
    lora = _lora_for_job(ctx, job, request)
    reference = _reference_for_job(ctx, job, request)
    seed = request.seed if request.seed is not None else job.id
    if not ctx.report(0.05, "painting"):
        raise JobStopped()
    result = pose_portraits(
        ctx.models,
        lora,
        reference,
        request.scene,
        token=request.token,
        cls=request.cls,
        n=request.n,
        seed=seed,
        owner=str(job.user_id if job.user_id is not None else "anon"),
        max_batch=ctx.max_batch,
    )
    images = [ctx.save_image(image, f"{i:02d}.jpg") for i, image in enumerate(result.images)]
    return kinds.PoseResult(result.prompt, result.caption, images, round(result.seconds, 3), seed).to_dict()
