"""The worker's `train` handler: payload → photos → train_lora → DATA_DIR/loras/<user>/lora.safetensors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from inference.faces import CROP_SIZE, check_selfie, image_fingerprint, is_duplicate
from inference.handlers import as_bool, payload_value
from inference.train.config import TrainConfig
from inference.train.loop import TrainingCancelled, TrainProgress, train_lora
from jobs.errors import BAD_REQUEST, TOO_FEW_PHOTOS, JobError
from jobs.models import Job

log = logging.getLogger(__name__)
MIN_PHOTOS = 3
MAX_PHOTOS = 20


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
            rejected.append((i, "duplicate"))
            continue
        fingerprints.append(fp)
        accepted.append(image.convert("RGB"))
    return accepted, rejected


def require_enough(accepted: list, rejected: list[tuple[int, str]]) -> None:
    if len(accepted) < MIN_PHOTOS:
        reasons = ", ".join(f"photo {i + 1}: {code}" for i, code in rejected)
        raise JobError(
            TOO_FEW_PHOTOS,
            f"{len(accepted)} usable photos, {MIN_PHOTOS} needed" + (f" ({reasons})" if reasons else ""),
        )


def config_from_payload(payload: dict[str, Any]) -> TrainConfig:
    overrides: dict[str, Any] = {
        "cls": str(payload.get("class") or "person"),
        "token": str(payload.get("token") or "sks"),
    }
    for key, cast in (
        ("steps", int),
        ("rank", int),
        ("lr", float),
        ("train_text_encoder", as_bool),
        ("seed", int),
    ):
        if (value := payload_value(payload, key, cast)) is not None:
            overrides[key] = value
    cfg = TrainConfig(**overrides)
    try:
        cfg.validate()
    except ValueError as exc:
        raise JobError(BAD_REQUEST, str(exc)) from exc
    return cfg


def _load_photos(data_dir: Path, paths: list[str]) -> list[Image.Image]:
    from inference.images import load_photo

    images = []
    for relative in paths[:MAX_PHOTOS]:
        try:
            images.append(load_photo(data_dir / relative))
        except (JobError, OSError) as exc:  # one unreadable photo is not fatal: the count decides
            log.info("train photo %s skipped: %s", relative, exc)
    return images


def run_train_job(ctx, job: Job) -> dict[str, Any]:
    payload = job.payload
    cfg = config_from_payload(payload)
    photos, _ = usable_photos(_load_photos(Path(ctx.data_dir), list(payload.get("photos") or [])))
    require_enough(photos, [])
    owner = str(job.user_id if job.user_id is not None else f"job{job.id}")
    out = Path(ctx.data_dir) / "loras" / owner / "lora.safetensors"

    def progress(event: TrainProgress) -> bool:
        if event.phase == "class_images":
            text = f"preparing class images {event.done}/{event.total}"
        else:
            text = f"training step {event.done}/{event.total}"
        return ctx.report(
            round(0.99 * event.fraction, 4), text, None if event.eta_s is None else round(event.eta_s, 1)
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
        from inference.worker import JobStopped

        raise JobStopped() from None
    return {
        "lora": out.relative_to(ctx.data_dir).as_posix(),
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "token": cfg.token,
        "class": cfg.cls,
        "photos": len(photos),
        "class_images_generated": result.class_images_generated,
        "yielded": result.yielded,
    }
