"""Profile DreamBooth-LoRA training steps on the resident models (a GPU diagnosis aid, not a test).

    MODELS=sd15-random python scripts/profile_train.py [--steps 30] [--batch-size 1]
Prints the step time unprofiled, then the top operators by CPU and by CUDA time.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from inference.cli_train import bench_selfies
from inference.models import load_models
from inference.settings import InferenceSettings
from inference.train import TrainConfig
from inference.train.loop import train_lora


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    models = load_models(InferenceSettings.from_env())
    photos = bench_selfies()
    cfg = TrainConfig(cls="man", steps=args.steps, num_class_images=8, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"

        def run(steps: int) -> float:
            result = train_lora(
                models, photos, replace(cfg, steps=steps), out=Path(tmp) / "l.safetensors", class_cache=cache
            )
            return result.train_seconds / steps * 1000

        run(5)  # warm-up: class images, cuDNN autotuning
        print(f"unprofiled: {run(cfg.steps):.1f} ms/step (batch {cfg.batch_size} + {cfg.batch_size} class)")
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) as prof:
            print(f"profiled: {run(cfg.steps):.1f} ms/step")
        averages = prof.key_averages()
        print(averages.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=70))
        print(averages.table(sort_by="self_cuda_time_total", row_limit=15, max_name_column_width=70))


if __name__ == "__main__":
    main()
