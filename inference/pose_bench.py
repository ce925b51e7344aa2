"""`python -m inference bench --pose`: four /pose portraits with a LoRA, the ControlNet resident.

Issue 11's targets (H200, MODELS=sd15-random): four pose portraits in <= 1.0 s of GPU time, and the whole
worker <= 10 GiB peak with the ControlNet resident. The ControlNet is loaded the way the worker loads it,
on the first pose (inference/control.py), and that load is timed too: it is what the first /pose after a
start pays, and what preloading it at start would move into the worker's start-up instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def pose_bench(models, timer, iters: int, warmup: int) -> dict[str, Any]:
    import torch

    from inference.bench import _median, _peaks, _repeat
    from inference.cli_train import bench_selfies
    from inference.pose import POSE_STEPS, pose_portraits
    from inference.train import TrainConfig
    from inference.train.loop import train_lora

    cuda = models.device.type == "cuda"
    reference = bench_selfies(1)[0]  # a person (the astronaut), 512 px
    with tempfile.TemporaryDirectory() as tmp:
        # Any LoRA of the production rank has the production cost: one step, no prior images.
        lora = Path(tmp) / "lora.safetensors"
        config = TrainConfig(cls="man", steps=1, warmup_steps=0, with_prior=False, cuda_graphs=False)
        train_lora(models, [reference], config, out=lora, class_cache=Path(tmp) / "class_images")
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        models.controlnet()
        if cuda:
            torch.cuda.synchronize()
        control_load_s = time.perf_counter() - started
        resident = torch.cuda.memory_allocated(models.device) / 2**30 if cuda else None

        def four() -> None:
            pose_portraits(models, lora, reference, "as a knight", n=4, seed=0)

        first = timer(four)  # the LoRA loaded, the step's CUDA graphs captured (inference/control.py)
        if cuda:  # what the sections before left cached (the LoRA's training step above) is not the pose's
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(models.device)
        runs = _repeat(timer, four, iters, warmup)
        peak = _peaks(torch, models.device)
    return {
        "steps": POSE_STEPS,
        "lora_rank": config.rank,
        "control_load_s": round(control_load_s, 3),
        "first_pose_s": round(first[0], 3),
        "pose_4_s": _median(runs, 0),  # caption of the reference + 4 pictures, as a job runs it
        "pose_4_gpu_s": _median(runs, 1),
        "resident_gib": round(resident, 3) if resident is not None else None,  # + ControlNet
        "peak_allocated_gib": peak[0],  # base + caption + vqa + ControlNet + LoRA (+ fast UNet after --fast)
        "peak_reserved_gib": peak[1],
    }
