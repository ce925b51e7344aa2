"""`python -m inference bench --fast`: fast mode's numbers beside the normal album's (issue 10's targets).

- `fast_job_4_gpu_s`: caption + four styles on the few-step schedule (target ≤ 0.15 s on an H200);
- `fast_queue_albums_per_hour`: fast albums drained through a real queue by an in-process worker, from
  enqueue to the last one done (target ≥ 20,000 per GPU);
- `fast_portrait_4_gpu_s`: four portraits with a user's LoRA fused into fast mode's UNet, graphed
  (ARTBOOTH_FUSE_LORA, on by default; off: the two LoRAs stacked as peft adapters, eager) (target ≤ 0.3 s).
  The user's LoRA is random, of the trainer's default shape (rank, targets).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from contract.kinds import JobKind, StylizeRequest
from contract.styles import ARTISTS


def _median(runs, k: int) -> float | None:
    values = [r[k] for r in runs if r[k] is not None]
    return round(statistics.median(values), 4) if values else None


def random_user_lora(models, out: Path) -> Path:
    """A LoRA of the trainer's default shape with random weights, as /train would leave one."""
    from dataclasses import replace

    from inference.fast import lora_twin_layers
    from inference.train import TrainConfig
    from inference.train.lora_io import save_lora

    config = TrainConfig()
    shape = replace(models.preset.fast, rank=config.rank, targets=config.unet_targets)
    layers = lora_twin_layers(dict(models.txt2img.unet.config), shape, seed=1)
    return save_lora(
        out,
        unet_layers=layers,
        text_encoder_layers=None,
        base_model=models.base_id,
        rank=config.rank,
        alpha=config.lora_alpha,
        steps=0,
        token=config.token,
        cls="person",
        unet_targets=config.unet_targets,
    )


def queue_drain(models, photo, albums: int) -> float:
    """Seconds for an in-process worker to run `albums` fast album jobs queued at once."""
    from inference.settings import InferenceSettings
    from inference.worker import Worker

    with tempfile.TemporaryDirectory(prefix="fast-drain-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "uploads").mkdir()
        photo.save(data_dir / "uploads" / "bench.png")
        settings = InferenceSettings(data_dir=data_dir, models=models.preset.name, device=str(models.device))
        worker = Worker(settings, models=models, idle_min_s=0.001)
        request = StylizeRequest("uploads/bench.png", styles=ARTISTS, fast=True).to_payload()
        started = time.perf_counter()
        for i in range(albums):
            worker.queue.enqueue(JobKind.STYLIZE, {**request, "seed": i}, user_id=i, priority=10)
        done = 0
        while done < albums:
            done += worker.run_pending()
        seconds = time.perf_counter() - started
        worker.close()
    return seconds


def fast_report(models, photo, timer, repeat, args) -> dict[str, Any]:
    """The fast-mode keys of the bench report. `timer`/`repeat` are bench.py's."""
    from inference.models import model_id
    from inference.portrait import portrait
    from inference.stylize import stylize

    caption = models.captioner.caption([photo])[0]

    def album(with_caption: bool = True):
        return stylize(
            models,
            photo,
            styles=ARTISTS,
            seed=0,
            strength=args.strength,
            caption=None if with_caption else caption,
            fast=True,
        )

    first = timer(album)  # builds the fused UNet (and captures its graphs)
    stylize_runs = repeat(timer, lambda: album(False), args.iters, args.warmup)
    job_runs = repeat(timer, album, args.iters, args.warmup)
    with tempfile.TemporaryDirectory(prefix="fast-bench-") as tmp:
        lora = random_user_lora(models, Path(tmp) / "lora.safetensors")
        portraits = repeat(
            timer,
            lambda: portrait(models, lora, "on the moon", n=4, fast=True, owner="bench"),
            args.iters,
            args.warmup,
        )
    drain_s = queue_drain(models, photo, args.drain)
    schedule = models.preset.fast
    return {
        "fast_schedule": {
            "lora": model_id(models.settings, "fast"),
            "autoencoder": _autoencoder(models),
            "scheduler": schedule.scheduler,
            "album_steps": schedule.album_steps,
            "denoising_steps": int(schedule.album_steps * args.strength),
            "portrait_steps": schedule.steps,
            "guidance": schedule.guidance,
        },
        "fast_first_job_s": round(first[0], 3),
        "fast_stylize_4_s": _median(stylize_runs, 0),
        "fast_stylize_4_gpu_s": _median(stylize_runs, 1),
        "fast_job_4_s": _median(job_runs, 0),
        "fast_job_4_gpu_s": _median(job_runs, 1),
        "fast_portrait_4_s": _median(portraits, 0),
        "fast_portrait_4_gpu_s": _median(portraits, 1),
        **_tiny_vae_times(models, photo),
        "fast_queue_albums": args.drain,
        "fast_queue_s": round(drain_s, 3),
        "fast_queue_albums_per_hour": round(3600 * args.drain / drain_s),
    }


def _autoencoder(models) -> str:
    from inference.fast import tiny_vae
    from inference.models import model_id

    if tiny_vae(models) is None:
        return "the base model's VAE"
    return model_id(models.settings, "fast_vae")


def _tiny_vae_times(models, photo) -> dict[str, float]:
    """GPU time of fast mode's autoencoder: encoding the album's photo, decoding its four pictures."""
    import torch

    from inference.bench_parts import gpu_time
    from inference.fast import tiny_vae
    from inference.graphs import plain_decoder
    from inference.stylize import encode_images

    vae = tiny_vae(models)
    if vae is None or models.device.type != "cuda":
        return {}
    pipe = models.txt2img
    with torch.inference_mode():
        latents = encode_images(pipe, [photo], models.device, models.dtype, vae)
        decode = plain_decoder(vae)
        four = latents.repeat(4, 1, 1, 1)
        return {
            "fast_vae_encode_1_gpu_s": gpu_time(
                lambda: encode_images(pipe, [photo], models.device, models.dtype, vae)
            ),
            "fast_vae_decode_4_gpu_s": gpu_time(lambda: decode(four)),
        }
