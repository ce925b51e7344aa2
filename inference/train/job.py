"""The worker's `train` handler: payload → photos → train_lora → DATA_DIR/loras/<user>/lora.safetensors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from contract.faces import CROP_SIZE, DUPLICATE, check_selfie, image_fingerprint, is_duplicate
from contract.images import load_photo
from contract.kinds import MAX_SELFIES, MIN_SELFIES, TrainPhase, TrainRequest, TrainResult
from inference.context import JobContext, JobStopped
from inference.train.config import TrainConfig
from inference.train.loop import TrainingCancelled, TrainProgress, train_lora
from jobs.errors import BAD_REQUEST, TOO_FEW_PHOTOS, JobError
from jobs.models import Job

log = logging.getLogger(__name__)


def usable_photos(images: list[Image.Image]) -> tuple[list[Image.Image], list[tuple[int, str]]]:
    """Face crops to train on, and (index, error code) for each photo left out.

    The bot sends crops it already checked; a photo that is not a CROP_SIZE square is checked and
    cropped here, so the CLI and older payloads get the same treatment. Duplicates are dropped.
    """
    accepted, rejected, fingerprints = [], [], []
    for i, image in enumerate(images):
        if image.size != (CROP_SIZE, CROP_SIZE):
            check = check_selfie(image)
            if not check.ok:
                rejected.append((i, check.code))
                continue
            image = check.crop
        fp = image_fingerprint(image)
        if is_duplicate(fp, fingerprints):
            rejected.append((i, DUPLICATE))
            continue
        fingerprints.append(fp)
        accepted.append(image.convert("RGB"))
    return accepted, rejected


def require_enough(accepted: list, rejected: list[tuple[int, str]]) -> None:
    if len(accepted) < MIN_SELFIES:
        reasons = ", ".join(f"photo {i + 1}: {code}" for i, code in rejected)
        raise JobError(
            TOO_FEW_PHOTOS,
            f"{len(accepted)} usable photos, {MIN_SELFIES} needed" + (f" ({reasons})" if reasons else ""),
        )


def config_from_payload(payload: dict[str, Any]) -> TrainConfig:
    request = TrainRequest.from_payload(payload)
    cfg = TrainConfig(cls=request.cls, token=request.token, **request.overrides())
    try:
        cfg.validate()
    except ValueError as exc:
        raise JobError(BAD_REQUEST, str(exc)) from exc
    return cfg


def _load_photos(ctx: JobContext, paths: tuple[str, ...]) -> list[Image.Image]:
    images = []
    for relative in paths[:MAX_SELFIES]:
        try:
            images.append(load_photo(ctx.fetch(relative)))
        except (JobError, OSError) as exc:  # one unreadable photo is not fatal: the count decides
            log.info("train photo %s skipped: %s", relative, exc)
    return images


def run_train_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    cfg = config_from_payload(job.payload)
    photos, _ = usable_photos(_load_photos(ctx, TrainRequest.from_payload(job.payload).photos))
    require_enough(photos, [])
    owner = str(job.user_id if job.user_id is not None else f"job{job.id}")
    out = Path(ctx.data_dir) / "loras" / owner / "lora.safetensors"

    def progress(event: TrainProgress) -> bool:
        phase = TrainPhase.CLASS_IMAGES if event.phase == "class_images" else TrainPhase.TRAINING
        return ctx.report(
            round(0.99 * event.fraction, 4), phase, None if event.eta_s is None else round(event.eta_s, 1)
        )

    try:
        result = train_lora(
            ctx.models,
            photos,
            cfg,
            out=out,
            class_cache=Path(ctx.data_dir) / "class_images",
            progress=progress,
            should_yield=ctx.should_yield,
            yield_now=ctx.run_waiting_interactive,
        )
    except TrainingCancelled:
        raise JobStopped() from None
    return TrainResult(
        lora=ctx.publish(out),
        steps=result.steps,
        seconds=round(result.seconds, 3),
        token=cfg.token,
        cls=cfg.cls,
        photos=len(photos),
        class_images_generated=result.class_images_generated,
        yielded=result.yielded,
    ).to_dict()
