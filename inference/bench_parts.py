"""The parts of `python -m inference bench` beside the album: the plain-diffusers baseline, the UNet step
and VAE decode alone, portraits with a LoRA, and the 'same pictures' check (PSNR against plain diffusers).

The baseline loads its own copy of the base pipeline from the same folder (fp16, SDPA, no graphs, no
compile, no channels_last): what a plain diffusers user would run on the same random weights.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from contract.styles import ARTISTS, STYLES


def gpu_time(fn, iters: int = 5, warmup: int = 1) -> float:
    """Median seconds of GPU time (CUDA events) over `iters` runs after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return round(statistics.median(times), 4)


def plain_pipeline(models):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline

    from inference.models import resolve

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
        resolve(models.settings, "base"),
        torch_dtype=models.dtype,
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(models.device)


def baseline(pipe, photo: Image.Image, steps: int, strength: float, iters: int) -> float:
    """Plain diffusers img2img, eager: the four artists' prompts as one batch of 4 (one strength)."""
    prompts = [STYLES[s].render("a person") for s in ARTISTS]
    negatives = [STYLES[s].negative for s in ARTISTS]

    def run():
        with torch.inference_mode():
            pipe(
                prompt=prompts,
                negative_prompt=negatives,
                image=photo,
                strength=strength,
                num_inference_steps=steps,
            )

    return gpu_time(run, iters)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else round(10 * np.log10(255**2 / mse), 2)


def same_pictures(models, pipe, photo: Image.Image, steps: int) -> float:
    """PSNR of the fast path (bucket, shared batch with another photo, compiled, graphed) against plain
    diffusers img2img on the same photo (already at a bucket's size), style and seed."""
    from inference.stylize import StylizeItem, stylize_batch

    items = [
        StylizeItem(photo.rotate(180), seed=5),
        StylizeItem(photo, styles=("delaunay",), seed=3, caption="a man"),
    ]
    ours = stylize_batch(models, items, steps=steps)[1].images[0][1]
    return psnr(np.asarray(diffusers_picture(models, pipe, photo, steps)), np.asarray(ours))


def diffusers_picture(
    models, pipe, photo: Image.Image, steps: int, seed: int = 3, style_id: str = "delaunay"
) -> Image.Image:
    """What plain diffusers img2img paints of `photo` in a style, captioned "a man": the reference of the
    bench's PSNR and of the tests' same-pictures checks."""
    from inference.stylize import encode_image

    style = STYLES[style_id]
    with torch.inference_mode():
        init = encode_image(pipe, photo, models.device, models.dtype)
        return pipe(
            prompt=style.render("a man"),
            negative_prompt=style.negative,
            image=init,
            strength=style.strength,
            guidance_scale=style.guidance,
            num_inference_steps=steps,
            generator=[torch.Generator().manual_seed(seed)],
        ).images[0]


def unet_and_vae(models, iters: int = 20) -> dict:
    """One UNet step at batch 8 (4 pictures x guidance) and a VAE decode of 4, at 512x512: eager and as
    the worker runs them (compiled, graphed)."""
    from inference.graphs import unet_runner, vae_decoder

    unet, vae = models.txt2img.unet, models.txt2img.vae
    side = models.resolution // 8
    x = torch.randn(8, 4, side, side, device=models.device, dtype=models.dtype)
    t = torch.tensor(500, device=models.device)
    embeds = torch.randn(8, 77, unet.config.cross_attention_dim, device=models.device, dtype=models.dtype)
    z = torch.randn(4, 4, side, side, device=models.device, dtype=models.dtype)
    worker_unet, worker_decode = unet_runner(models), vae_decoder(models)
    with torch.inference_mode():
        return {
            "unet_step_b8_eager_s": gpu_time(lambda: unet(x, t, encoder_hidden_states=embeds), iters),
            "unet_step_b8_s": gpu_time(lambda: worker_unet(x, t, embeds), iters),
            "vae_decode_4_eager_s": gpu_time(lambda: vae.decode(z), max(3, iters // 4)),
            "vae_decode_4_s": gpu_time(lambda: worker_decode(z), max(3, iters // 4)),
        }


def random_lora(models, path: Path, seed: int, rank: int = 32) -> Path:
    """A LoRA file in the trainer's format with random weights, on every attention projection."""
    from inference.train.config import UNET_TARGETS
    from inference.train.lora_io import save_lora

    g = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in models.txt2img.unet.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in UNET_TARGETS):
            layers[f"{name}.lora.down.weight"] = torch.randn(rank, module.in_features, generator=g) / rank
            layers[f"{name}.lora.up.weight"] = torch.randn(module.out_features, rank, generator=g) * 0.02
    return save_lora(
        path,
        unet_layers=layers,
        text_encoder_layers=None,
        base_model=models.base_id,
        rank=rank,
        alpha=rank,
        steps=0,
        token="sks",
        cls="man",
        unet_targets=UNET_TARGETS,
    )


def portraits(models, folder: Path, iters: int) -> dict:
    """Four portraits with a user's LoRA (fast path), switching between two users, and the plain path."""
    from inference.portrait import portrait

    a, b = random_lora(models, folder / "a.safetensors", 1), random_lora(models, folder / "b.safetensors", 2)
    timed = lambda lora: gpu_time(lambda: portrait(models, lora, "on the moon", n=4, seed=1), iters)  # noqa: E731
    same = timed(a)
    started = time.perf_counter()
    for i in range(iters):
        portrait(models, a if i % 2 else b, "on the moon", n=4, seed=1)
    switching = (time.perf_counter() - started) / iters
    fast = portrait(models, a, "on the moon", n=4, seed=1).images
    models.settings.fuse_lora = False
    try:
        plain_s = gpu_time(lambda: portrait(models, a, "on the moon", n=4, seed=1), max(2, iters // 3))
        plain = portrait(models, a, "on the moon", n=4, seed=1).images
    finally:
        models.settings.fuse_lora = True
    pairs = [psnr(np.asarray(x), np.asarray(y)) for x, y in zip(fast, plain, strict=True)]
    return {
        "portraits_4_s": same,
        "portraits_4_switching_users_wall_s": round(switching, 4),
        "portraits_4_plain_peft_s": plain_s,
        "portraits_psnr_vs_plain_db": min(pairs),
    }
