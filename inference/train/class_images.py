"""Class images for prior preservation: generated once per (base model, class, resolution), then shared.

DreamBooth's prior-preservation loss needs pictures of the class ("a photo of man") drawn by the base
model itself. They depend only on the base model, the class and the resolution, so every later user of
that class trains with a warm cache. Files are written one by one atomically and `complete.json` is
written last: a crash mid-way leaves a partial set that the next run extends, never a broken one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

MARKER = "complete.json"


@dataclass(frozen=True)
class ClassImages:
    folder: Path
    paths: list[Path]
    generated: int  # how many this call had to generate (0: the cache was warm)


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "_"


def class_dir(cache_root: Path, base_id: str, cls: str, resolution: int) -> Path:
    return Path(cache_root) / sanitize(base_id) / sanitize(cls.lower()) / str(resolution)


def _read_marker(folder: Path) -> dict:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_atomic(image: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def ensure_class_images(
    pipe,
    folder: Path,
    *,
    prompt: str,
    count: int,
    resolution: int,
    steps: int = 25,
    seed: int = 0,
    batch_size: int = 4,
    between_batches: Callable[[int, int], None] | None = None,
) -> ClassImages:
    """Return `count` class images under `folder`, generating only those the cache lacks.

    Image i always comes from seed + i, so an extended or regenerated cache holds the same pictures.
    `between_batches(done, count)` runs between generation batches: progress, cancellation, preemption.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:04d}.png" for i in range(count)]
    marker = _read_marker(folder)
    if marker.get("prompt") == prompt and marker.get("count", 0) >= count:
        return ClassImages(folder, paths, 0)
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    done = count - len(missing)
    for start in range(0, len(missing), batch_size):
        if between_batches:
            between_batches(done, count)
        chunk = missing[start : start + batch_size]
        generators = [torch.Generator(device=pipe.device).manual_seed(seed + i) for i in chunk]
        with torch.inference_mode():
            images = pipe(
                [prompt] * len(chunk),
                height=resolution,
                width=resolution,
                num_inference_steps=steps,
                generator=generators,
            ).images
        for i, image in zip(chunk, images, strict=True):
            _save_atomic(image, paths[i])
        done += len(chunk)
    tmp = folder / f".{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"prompt": prompt, "count": count, "resolution": resolution, "steps": steps}))
    os.replace(tmp, folder / MARKER)
    return ClassImages(folder, paths, len(missing))
