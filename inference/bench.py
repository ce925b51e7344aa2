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
import traceback
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
    parser.add_argument(
        "--queue", type=int, default=0, help="also drain N real jobs through worker processes"
    )
    parser.add_argument("--aspects", default="4:3,3:4,1:1,16:9", help="photo aspects for --queue, in turn")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes for --queue, cycling over GPUs"
    )
    parser.add_argument(
        "--queue-dir", type=Path, help="where the drains' DATA_DIRs go (default DATA_DIR/bench-queue)"
    )
    parser.add_argument("--queue-only", action="store_true", help="only the queue drains")
    parser.add_argument("--warm-only", action="store_true", help="one drain on DATA_DIR's compile cache")
    parser.add_argument("--portraits", action="store_true", help="also four portraits with a LoRA (GPU)")
    # fast mode (inference/fast_bench.py): the few-step album, portraits on a user's LoRA, a queue drain
    parser.add_argument("--fast", action="store_true", help="also time fast mode (issue 10's targets)")
    parser.add_argument("--drain", type=int, default=200, help="fast albums in the queue drain (default 200)")
    parser.add_argument(
        "--queue-fast",
        type=int,
        default=0,
        help="also drain N fast albums through a worker process (--aspects)",
    )
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
    """Every section runs even if one before it failed (its error is recorded); the JSON is rewritten
    after each, so a run cut short by a time limit still leaves what it measured."""
    from inference.settings import InferenceSettings

    settings = InferenceSettings.for_process(args.device)  # before diffusers is imported (compile caches)
    import diffusers
    import torch
    import transformers

    from inference.models import pick_device, resolve
    from inference.presets import ROLES

    device = pick_device(settings.device)
    report: dict[str, Any] = {
        "preset": settings.models,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
        "compile": settings.compile,
        "steps": args.steps,
        "strength": args.strength,
    }

    t0 = time.perf_counter()
    for role in ROLES:  # build sd15-random (first run only) outside the timed load and the drains
        resolve(settings, role)
    report["build_s"] = round(time.perf_counter() - t0, 1)
    if args.queue or args.queue_fast:
        _measure("queue", lambda: _queue_sections(args, settings, report), report, args.out, timed=True)
    if not args.queue_only:
        _measure(
            "album", lambda: _album_section(args, settings, device, report), report, args.out, timed=True
        )
    print(json.dumps(report, indent=2))
    return 0


def _write(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def _measure(name: str, fn: Callable[[], dict], report: dict, out: Path, timed: bool = False) -> None:
    """One part of the bench: its figures into `report`, or its error (the parts after it still run); then
    the JSON is rewritten, so a run cut short keeps what it measured. `timed`: its seconds in section_s."""
    started = time.perf_counter()
    try:
        report.update(fn())
    except Exception as error:
        traceback.print_exc()
        report[f"{name}_error"] = f"{type(error).__name__}: {error}"[:500]
    if timed:
        report.setdefault("section_s", {})[name] = round(time.perf_counter() - started, 1)
    _write(out, report)


def _queue_sections(args: argparse.Namespace, settings, report: dict) -> dict:
    """Queue drains: cold compile cache (a first start), then warm; fresh DATA_DIRs under --queue-dir."""
    from inference.bench_queue import drain, parse_aspects
    from inference.models import models_dir

    aspects = parse_aspects(args.aspects)
    root = args.queue_dir or Path(settings.data_dir) / "bench-queue"
    stamp = time.strftime("%H%M%S")
    cache = root / f"compile-cache-{stamp}"
    out: dict[str, Any] = {}
    if args.queue and not args.warm_only:
        cold = drain(
            models_dir(settings), root / f"cold-{stamp}", min(args.queue, 8), aspects, args.workers, cache
        )
        out["queue_cold"] = report["queue_cold"] = cold
        _write(args.out, report)  # the whole report so far, should the warm drain be cut short
    else:
        cache = settings.compile_cache_dir
    if args.queue:
        out["queue_warm"] = report["queue_warm"] = drain(
            models_dir(settings), root / f"warm-{stamp}", args.queue, aspects, args.workers, cache
        )
        _write(args.out, report)
    if args.queue_fast:  # fast mode's shapes are not prepared at start: its first album per bucket captures
        out["queue_fast"] = drain(
            models_dir(settings),
            root / f"fast-{stamp}",
            args.queue_fast,
            aspects,
            args.workers,
            cache,
            fast=True,
        )
    return out


def _album_section(args: argparse.Namespace, settings, device, report: dict) -> dict:
    import torch

    from inference.models import load_models
    from inference.stylize import stylize
    from inference.warmup import warm_up

    t0 = time.perf_counter()
    models = load_models(settings, roles=("base", "caption", "vqa"))
    if device.type == "cuda":
        torch.cuda.synchronize()
    report["load_s"] = round(time.perf_counter() - t0, 3)
    if settings.compile:  # the worker's start is timed by --queue; here only the album's bucket matters
        square = (models.resolution, models.resolution)  # bench_photo's size: the square bucket
        report["warmup_s"] = round(warm_up(models, sizes=[square]), 1)
    report["dtype"] = str(models.dtype).replace("torch.", "")
    report["resident_gib"] = (
        round(torch.cuda.memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None
    )
    photo = bench_photo(models.resolution)
    report["resolution"] = list(photo.size)
    report["denoising_steps"] = int(args.steps * args.strength)
    report["iters"] = args.iters
    timer = Timer(device)
    caption = models.captioner.caption([photo])[0]

    def album(variants: int = 1, with_caption: bool = True, strength: float | None = args.strength):
        return stylize(
            models,
            photo,
            styles=ARTISTS,
            variants=variants,
            seed=0,
            steps=args.steps,
            strength=strength,
            caption=None if with_caption else caption,
        )

    report["first_job_s"] = round(timer(album)[0], 3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # from here: resident weights + one album at a time
    caption_runs = _repeat(timer, lambda: models.captioner.caption([photo]), args.iters, args.warmup)
    stylize_runs = _repeat(timer, lambda: album(with_caption=False), args.iters, args.warmup)
    job_runs = _repeat(timer, album, args.iters, args.warmup)
    own_runs = _repeat(timer, lambda: album(strength=None), args.iters, args.warmup)
    album_peak = _peaks(torch, device)
    throughput = {}
    for v in args.variants:
        runs = _repeat(timer, lambda v=v: album(variants=v), max(1, args.iters // 2), args.warmup)
        throughput[len(ARTISTS) * v] = round(len(ARTISTS) * v / statistics.median(r[0] for r in runs), 3)
    report.update(
        {
            "caption": caption,
            "caption_s": _median(caption_runs, 0),
            "caption_gpu_s": _median(caption_runs, 1),
            "stylize_4_s": _median(stylize_runs, 0),
            "stylize_4_gpu_s": _median(stylize_runs, 1),
            "job_4_s": _median(job_runs, 0),
            "job_4_gpu_s": _median(job_runs, 1),
            "job_4_own_strengths_gpu_s": _median(own_runs, 1),  # each artist at its strength (0.6..0.7)
            "images_per_s_by_batch": throughput,
            "images_per_s": max(
                [*throughput.values(), round(len(ARTISTS) / statistics.median(r[0] for r in job_runs), 3)]
            ),
            "peak_allocated_gib": album_peak[0],  # ... while running 4-picture albums (a worker's load)
            "peak_reserved_gib": album_peak[1],
            "peak_allocated_gib_throughput": _peaks(torch, device)[0],  # ... incl. the largest batch above
            "peak_reserved_gib_throughput": _peaks(torch, device)[1],
        }
    )
    _write(args.out, report)
    if device.type == "cuda":
        _gpu_sections(args, models, photo, report)
    _later_sections(args, models, photo, timer, report)
    return {}


def _later_sections(args: argparse.Namespace, models, photo, timer: Timer, report: dict) -> None:
    """Fast mode, then /pose: each loads adapters or a ControlNet, so they come after the album's figures."""
    sections = []
    if args.fast:
        from inference.fast_bench import fast_report

        sections.append(("fast", lambda: fast_report(models, photo, timer, _repeat, args)))
    if args.pose:
        from inference.pose_bench import pose_bench

        sections.append(("pose", lambda: {"pose": pose_bench(models, timer, args.iters, args.warmup)}))
    for name, fn in sections:
        _measure(name, fn, report, args.out)


def _gpu_sections(args: argparse.Namespace, models, photo, report: dict) -> None:
    """Baseline, UNet/VAE alone, the PSNR check and, last (the plain path wraps the UNet in peft layers),
    portraits."""
    from inference import bench_parts

    def part(name: str, fn: Callable[[], dict]) -> None:
        _measure(name, fn, report, args.out)

    pipe = bench_parts.plain_pipeline(models)
    part(
        "baseline",
        lambda: {
            "baseline_diffusers_4_gpu_s": bench_parts.baseline(
                pipe, photo, args.steps, args.strength, args.iters
            )
        },
    )
    part(
        "psnr",
        lambda: {"psnr_fast_vs_diffusers_db": bench_parts.same_pictures(models, pipe, photo, args.steps)},
    )
    pipe = None  # the plain copy's memory back before the rest  # noqa: F841
    import torch

    torch.cuda.empty_cache()
    part("unet_vae", lambda: bench_parts.unet_and_vae(models))
    if report.get("baseline_diffusers_4_gpu_s") and report.get("job_4_gpu_s"):
        base = report["baseline_diffusers_4_gpu_s"]
        report["speedup_vs_diffusers"] = round(base / report["job_4_gpu_s"], 2)
    if args.portraits:
        part(
            "portraits",
            lambda: bench_parts.portraits(models, args.out.parent / "bench-loras", max(3, args.iters)),
        )
