"""Prepare every shape the worker will paint before it claims a job, so no user waits on a compilation.

For each shape bucket and each number of photos per batch (1..ARTBOOTH_BATCH_PHOTOS) one album is painted
at the real steps and strengths, inside `inference.graphs.preparing()`. That captures the UNet's CUDA graph
for every active batch size (1, 2 and 4 pictures per photo as the four artists join at their strengths),
graphs BLIP's decoding for each caption batch and, with ARTBOOTH_COMPILE=1, compiles the UNet's batch-8
shape and the VAE decoder's slice (two pictures) of each bucket (about a minute per bucket on a first start;
later starts load the kernels from DATA_DIR/compile-cache in seconds). CPU workers skip it: nothing there
is compiled or captured.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PIL import Image

from contract.kinds import STYLIZE_STEPS
from inference.buckets import buckets
from inference.gpu_memory import memory_now
from inference.graphs import preparing

log = logging.getLogger("artbooth.worker")


def warm_up(models, sizes: list[tuple[int, int]] | None = None) -> float:
    """Paint one album per (bucket, photos per batch); returns the seconds it took. `sizes`: only these
    buckets (the bench's album, which uses one)."""
    from inference.stylize import StylizeItem, stylize_batch

    settings = models.settings
    if models.device.type != "cuda" or not settings.warmup:
        return 0.0
    started = time.perf_counter()
    sizes = sizes or buckets(models.resolution)
    inductor = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or settings.compile_cache_dir / "inductor")
    first = settings.compile and not any(inductor.glob("*"))
    if settings.compile:
        log.info("compiled kernels cached in %s", inductor)
    log.info(
        "preparing %d shape buckets x %d photos per batch%s",
        len(sizes),
        settings.batch_photos,
        " (first start with an empty compile cache: compiling, about 8 minutes on an H200)" if first else "",
    )
    with preparing():
        for size in sizes:
            for photos in range(1, settings.batch_photos + 1):
                items = [StylizeItem(_photo(size, i), seed=i) for i in range(photos)]  # BLIP too
                stylize_batch(models, items, steps=STYLIZE_STEPS)
            log.info("bucket %dx%d ready after %.0fs%s", *size, time.perf_counter() - started, memory_now())
    seconds = time.perf_counter() - started
    log.info("all shapes prepared in %.1fs", seconds)
    return seconds


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    return Image.effect_noise(size, 40 + seed).convert("RGB")
