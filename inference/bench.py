"""`python -m inference bench`: load time, caption and album latency, throughput and peak GPU memory.

Run it with MODELS=sd15-random on a GPU (the real compute with random weights) or MODELS=tiny on a
CPU (plumbing only). The album is the production one: 4 artists, 30 steps, strength 0.6 (18 denoising
steps on a batch of 4, 8 with classifier-free guidance), at the preset's resolution (512x512 for SD 1.5).

H100 80GB, sd15-random, torch 2.11, diffusers 0.42.1, transformers 5.17 (median of 9 after warm-up):
album with caption 0.707 s (caption 0.047 s, album 0.648 s), 7.1 images/s at batch 16, peak 5.7 GiB
allocated / 7.2 GiB reserved with base + caption + vqa resident (3.6 GiB); ARTBOOTH_COMPILE=1: 0.65 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from contract.styles import ARTISTS


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the resident models (MODELS=sd15-random on a GPU)",
        description="Times model loading, a BLIP caption, the 4-style album (30 steps, strength 0.6) and "
        "throughput at larger batches; reports peak GPU memory with base + caption + vqa resident. "
        "ARTBOOTH_COMPILE=1 adds torch.compile (its compile time counts as load).",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench.json"), help="JSON report (default bench.json)"
    )
    parser.add_argument(
        "--iters", type=int, default=5, help="timed repetitions after one warm-up (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs before each measurement (default 1)"
    )
    parser.add_argument("--steps", type=int, default=30, help="steps before strength (default 30)")
    parser.add_argument(
        "--strength", type=float, default=0.6, help="common strength for the album (default 0.6)"
    )
    parser.add_argument(
        "--variants",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="variants per style for the throughput runs",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    # fast mode (inference/fast_bench.py): the few-step album, portraits on a user's LoRA, a queue drain
    parser.add_argument("--fast", action="store_true", help="also time fast mode (issue 10's targets)")
    parser.add_argument("--drain", type=int, default=200, help="fast albums in the queue drain (default 200)")
    parser.add_argument(
        "--pose",
        action="store_true",
        help="then four /pose portraits with a LoRA, the ControlNet resident (inference/pose_bench.py)",
    )
    parser.set_defaults(func=run_bench)
    return parser


def bench_photo(size: int) -> Image.Image:
    """A deterministic photo-like picture: smooth gradients plus a little noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack(
        [0.5 + 0.4 * np.sin(6 * x), 0.5 + 0.4 * np.cos(5 * y), 0.5 + 0.3 * np.sin(4 * (x + y))], -1
    )
    rgb += np.random.default_rng(0).normal(0, 0.03, rgb.shape)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


class Timer:
    """Wall time, plus CUDA-event time on a GPU (the GPU timeline between two points)."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> tuple[float, float | None]:
        torch = self.torch
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        fn()
        if self.cuda:
            end.record()
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        return wall, (start.elapsed_time(end) / 1000 if self.cuda else None)


def _median(runs: list[tuple[float, float | None]], k: int) -> float | None:
    values = [r[k] for r in runs if r[k] is not None]
    return round(statistics.median(values), 4) if values else None


def _repeat(
    timer: Timer, fn: Callable[[], Any], iters: int, warmup: int = 1
) -> list[tuple[float, float | None]]:
    for _ in range(warmup):  # kernels chosen, caches filled
        fn()
    return [timer(fn) for _ in range(max(1, iters))]


def _peaks(torch, device) -> tuple[float | None, float | None]:
    if device.type != "cuda":
        return None, None
    gib = 2**30
    return round(torch.cuda.max_memory_allocated(device) / gib, 3), round(
        torch.cuda.max_memory_reserved(device) / gib, 3
    )


def run_bench(args: argparse.Namespace) -> int:
    import diffusers
    import torch
    import transformers

    from inference.models import load_models, pick_device
    from inference.settings import InferenceSettings
    from inference.stylize import stylize

    settings = InferenceSettings.from_env()
    if args.device:
        settings.device = args.device
    device = pick_device(settings.device)
    # Build (sd15-random: first run only) outside the timed load, as a deployed worker would have it.
    from inference.models import resolve
    from inference.presets import ROLES

    for role in ROLES[:3]:
        resolve(settings, role)
    t0 = time.perf_counter()
    models = load_models(settings, roles=("base", "caption", "vqa"))
    if device.type == "cuda":
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0

    resident_gib = round(torch.cuda.memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None
    photo = bench_photo(models.resolution)
    timer = Timer(device)
    caption = models.captioner.caption([photo])[0]

    def album(variants: int = 1, with_caption: bool = True):
        return stylize(
            models,
            photo,
            styles=ARTISTS,
            variants=variants,
            seed=0,
            steps=args.steps,
            strength=args.strength,
            caption=None if with_caption else caption,
        )

    first_job = timer(album)  # the first album: cuDNN autotuning, and compiling under ARTBOOTH_COMPILE=1
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # from here: resident weights + one album at a time
    caption_runs = _repeat(timer, lambda: models.captioner.caption([photo]), args.iters, args.warmup)
    stylize_runs = _repeat(timer, lambda: album(with_caption=False), args.iters, args.warmup)
    job_runs = _repeat(timer, album, args.iters, args.warmup)
    album_peak = _peaks(torch, device)
    throughput = {}
    for v in args.variants:
        runs = _repeat(timer, lambda v=v: album(variants=v), max(1, args.iters // 2), args.warmup)
        throughput[len(ARTISTS) * v] = round(len(ARTISTS) * v / statistics.median(r[0] for r in runs), 3)

    report = {
        "preset": models.preset.name,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "dtype": str(models.dtype).replace("torch.", ""),
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
        "compile": models.settings.compile,
        "resolution": list(photo.size),
        "steps": args.steps,
        "strength": args.strength,
        "denoising_steps": int(args.steps * args.strength),
        "iters": args.iters,
        "load_s": round(load_s, 3),
        "first_job_s": round(first_job[0], 3),
        "caption": caption,
        "caption_s": _median(caption_runs, 0),
        "stylize_4_s": _median(stylize_runs, 0),
        "stylize_4_gpu_s": _median(stylize_runs, 1),
        "job_4_s": _median(job_runs, 0),
        "job_4_gpu_s": _median(job_runs, 1),
        "images_per_s_by_batch": throughput,
        "images_per_s": max(
            [*throughput.values(), round(len(ARTISTS) / statistics.median(r[0] for r in job_runs), 3)]
        ),
        "resident_gib": resident_gib,  # base + caption + vqa weights
        "peak_allocated_gib": album_peak[0],  # ... while running 4-picture albums (a worker's load)
        "peak_reserved_gib": album_peak[1],
        "peak_allocated_gib_throughput": _peaks(torch, device)[0],  # ... incl. the largest batch above
        "peak_reserved_gib_throughput": _peaks(torch, device)[1],
    }
    if args.fast:
        from inference.fast_bench import fast_report

        report.update(fast_report(models, photo, timer, _repeat, args))
    if args.pose:  # issue 11, after the album's figures: the ControlNet then stays resident
        from inference.pose_bench import pose_bench

        report["pose"] = pose_bench(models, timer, args.iters, args.warmup)
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0
