"""`bench --queue N`: real stylize jobs through the real worker, as a deployment runs them.

N photos of the given phone aspect ratios (1600 px on the long side, JPEG) are enqueued into a fresh
DATA_DIR that shares the built models, then K worker processes (`python -m inference --device cuda:k
--exit-when-idle`, k cycling over the visible GPUs) drain it. Everything is read back from the jobs table:
albums/hour overall (first claim to last finish) and in steady state (after the first quarter), job p50/p95
(claim to finish), and each worker's start (spawn to its first claim: loading, compiling or loading the
compile cache, preparing every shape). Run twice on one compile cache: the first start is cold, the
second warm.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from jobs import JobQueue

LONG_SIDE = 1600


def parse_aspects(text: str) -> list[tuple[int, int]]:
    pairs = [part.split(":") for part in text.split(",") if part.strip()]
    return [(int(w), int(h)) for w, h in pairs]


def queue_photos(folder: Path, n: int, aspects: list[tuple[int, int]]) -> list[str]:
    """n distinct photo-like JPEGs, the aspects taken in turn; paths relative to DATA_DIR."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        w, h = aspects[i % len(aspects)]
        scale = LONG_SIDE / max(w, h)
        size = (round(w * scale), round(h * scale))
        y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32) / max(size)
        phase = i * 0.7
        rgb = np.stack([np.sin(6 * x + phase), np.cos(5 * y - phase), np.sin(4 * (x + y) + 2 * phase)], -1)
        rgb = 0.5 + 0.4 * rgb + np.random.default_rng(i).normal(0, 0.03, rgb.shape).astype(np.float32)
        name = folder / f"photo_{i:03d}.jpg"
        Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(name, quality=90)
        paths.append(name)
    return [str(p.relative_to(folder.parents[1])) for p in paths]


def drain(
    models_dir: Path,
    run_dir: Path,
    n: int,
    aspects: list[tuple[int, int]],
    workers: int,
    compile_cache: Path,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 900,
    fast: bool = False,
) -> dict:
    """One drain of n jobs by `workers` fresh worker processes; returns the figures. `fast`: every album
    asks for fast mode (issue 10's albums per hour through the queue)."""
    import torch

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "models").symlink_to(models_dir.resolve(), target_is_directory=True)
    photos = queue_photos(run_dir / "uploads" / "1", n, aspects)
    queue = JobQueue(run_dir / "artbooth.sqlite3")
    ids = [
        queue.enqueue("stylize", {"image": p, "fast": fast}, user_id=1000 + i, priority=10)
        for i, p in enumerate(photos)
    ]
    gpus = max(1, torch.cuda.device_count())
    env = dict(
        os.environ, DATA_DIR=str(run_dir), ARTBOOTH_COMPILE_CACHE=str(compile_cache), **(extra_env or {})
    )
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # the workers' own: under compile_cache
        env.pop(name, None)
    procs, logs = [], []
    spawned = time.time()
    for k in range(workers):
        log = (run_dir / f"worker{k}.log").open("w")
        device = f"cuda:{k % gpus}" if torch.cuda.is_available() else "cpu"
        cmd = [sys.executable, "-m", "inference", "--device", device, "--exit-when-idle"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        logs.append(log)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    for log in logs:
        log.close()
    jobs = [queue.get(i) for i in ids]
    texts = [Path(log.name).read_text() for log in logs]
    return summarize(jobs, spawned, texts) | {"workers": workers, "gpus": min(gpus, workers), "jobs": n}


def summarize(jobs: list, spawned: float, logs: list[str]) -> dict:
    done = [j for j in jobs if j.state == "done"]
    report: dict = {"done": len(done), "failed": sum(j.state == "failed" for j in jobs)}
    errors = sorted({f"{j.error_code}: {j.error_message}"[:200] for j in jobs if j.state == "failed"})
    if errors:
        report["errors"] = errors[:3]
    by_worker: dict[str, float] = {}
    for j in jobs:
        if j.started_at and j.worker:
            by_worker[j.worker] = min(by_worker.get(j.worker, j.started_at), j.started_at)
    report["start_s"] = sorted(round(t - spawned, 1) for t in by_worker.values())
    peaks = [re.findall(r"peak GPU memory ([\d.]+) GiB allocated, ([\d.]+) GiB reserved", t) for t in logs]
    report["peak_reserved_gib"] = [float(p[-1][1]) for p in peaks if p]
    prepared = [re.findall(r"all shapes prepared in ([\d.]+)s", t) for t in logs]
    report["warmup_s"] = [float(p[-1]) for p in prepared if p]
    if len(done) < 2:
        report["log_tail"] = [t[-1500:] for t in logs]
        return report
    durations = sorted(j.finished_at - j.started_at for j in done)
    finishes = sorted(j.finished_at for j in done)
    first_claim = min(j.started_at for j in done)
    n0 = max(1, len(done) // 4)
    report |= {
        "albums_per_hour": round(len(done) / (finishes[-1] - first_claim) * 3600),
        "albums_per_hour_steady": round((len(done) - n0) / (finishes[-1] - finishes[n0 - 1]) * 3600),
        "job_p50_s": round(statistics.median(durations), 3),
        "job_p95_s": round(durations[min(len(durations) - 1, int(0.95 * len(durations)))], 3),
        "job_max_s": round(durations[-1], 3),
    }
    return report
