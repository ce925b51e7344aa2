"""A photo -> one picture per (style, variant), in a single batched denoising run.

Why a loop of our own rather than one `StableDiffusionImg2ImgPipeline` call: the four artists differ in
strength (0.6 .. 0.7) *and* guidance (7.5 / 8.0), and one diffusers call has one of each, so the album
would cost four calls of batch 1. Here every step is ONE UNet call over all active samples:

- per-sample guidance: `uncond + g[i] * (cond - uncond)`;
- per-sample strength: all strengths walk the same 30-step timestep grid, a style with less strength
  simply joins the batch later (its latents are noised to its own first timestep, exactly as diffusers'
  `get_timesteps` + `prepare_latents` would do). Each strength group steps its own copy of the scheduler,
  so a multistep solver (DPM-Solver++ 2M) keeps a per-group history that matches a plain img2img run.

The photo is VAE-encoded once (the distribution's mode, so it needs no generator) and the latents are
shared by the batch. Noise comes from one CPU `torch.Generator` per picture, seeded `seed + i`, so the
same photo, styles and seed give the same pixels however the batch is split (`max_batch`, which the
worker halves after a CUDA OOM). `mode="text2img"` runs the same loop from pure noise (strength 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from inference.captioner import FALLBACK_CAPTION
from inference.images import prepare_for_sd
from inference.styles import ARTISTS, STYLES, StylePreset
from jobs.errors import BAD_REQUEST, JobError

MODES = ("img2img", "text2img")


@dataclass
class StylizeResult:
    caption: str
    images: list[tuple[str, Image.Image]]  # (style id, picture), in request order
    seconds: float


@dataclass
class _Sample:
    style: StylePreset
    seed: int
    strength: float
    guidance: float


# 1. prepare the image ---------------------------------------------------------------------------------


def prepare_image(models, image: Image.Image) -> Image.Image:
    res = models.resolution
    return prepare_for_sd(image.convert("RGB"), short_side=res, max_long_side=res * 3 // 2)


# 2. caption -------------------------------------------------------------------------------------------


def caption_image(models, image: Image.Image) -> str:
    if models.captioner is None:
        return FALLBACK_CAPTION
    return models.captioner.caption([image])[0]


# 3. prompts -------------------------------------------------------------------------------------------


def build_samples(
    styles: Sequence[str], variants: int, seed: int, strength: float | None, guidance: float | None
) -> list[_Sample]:
    unknown = [s for s in styles if s not in STYLES]
    if unknown or not styles:
        raise JobError(BAD_REQUEST, f"unknown styles: {', '.join(unknown) or '(none)'}")
    if variants < 1:
        raise JobError(BAD_REQUEST, "variants must be at least 1")
    presets = [STYLES[s] for s in styles for _ in range(variants)]
    return [
        _Sample(
            p,
            seed + i,
            p.strength if strength is None else strength,
            p.guidance if guidance is None else guidance,
        )
        for i, p in enumerate(presets)
    ]


def encode_prompts(
    pipe, caption: str, samples: list[_Sample], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) text embeddings, one row per sample, encoded in one text-encoder batch."""
    positive, negative = pipe.encode_prompt(
        [s.style.render(caption) for s in samples],
        device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=True,
        negative_prompt=[s.style.negative for s in samples],
    )
    return positive, negative


# 4. latents and timesteps -----------------------------------------------------------------------------


def encode_image(pipe, image: Image.Image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The photo's VAE latents (1, 4, H/8, W/8), encoded once and shared by every sample."""
    pixels = pipe.image_processor.preprocess(image).to(device=device, dtype=dtype)
    return pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor


def sample_noise(samples: list[_Sample], shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    """One generator per picture, on the CPU: the same seed gives the same noise on any device or batch."""
    noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s.seed)) for s in samples]
    return torch.stack(noise).to(device=device, dtype=dtype)


@dataclass
class _Group:
    """Samples sharing one strength: one scheduler copy, joining the loop at `start`."""

    index: list[int]  # positions in the chunk
    scheduler: object
    start: int  # index into the full timestep grid where this group enters
    latents: torch.Tensor | None = None


def make_groups(pipe, samples: list[_Sample], steps: int, device) -> tuple[list[_Group], torch.Tensor]:
    groups: dict[float, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.strength, []).append(i)
    out = []
    timesteps = None
    for strength, index in sorted(groups.items(), reverse=True):
        scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
        scheduler.set_timesteps(steps, device=device)
        # diffusers' get_timesteps, except that at least one step always runs
        start = (steps - max(1, min(int(steps * strength), steps))) * scheduler.order
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        timesteps = scheduler.timesteps if timesteps is None else timesteps
        out.append(_Group(index, scheduler, start))
    return out, timesteps


# 5. the denoising loop --------------------------------------------------------------------------------


def denoise(
    pipe,
    groups: list[_Group],
    timesteps: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    guidance: torch.Tensor,
    on_step: Callable[[int, int], object] | None = None,
) -> torch.Tensor:
    first = min(g.start for g in groups)
    for k in range(first, len(timesteps)):
        t = timesteps[k]
        active = [g for g in groups if g.start <= k]
        idx = [i for g in active for i in g.index]
        x = torch.cat([g.scheduler.scale_model_input(g.latents, t) for g in active])
        pred = pipe.unet(
            torch.cat([x, x]),
            t,
            encoder_hidden_states=torch.cat([negative[idx], positive[idx]]),
            return_dict=False,
        )[0]
        uncond, cond = pred.chunk(2)
        pred = uncond + guidance[idx].view(-1, 1, 1, 1) * (cond - uncond)
        offset = 0
        for g in active:
            n = len(g.index)
            g.latents = g.scheduler.step(pred[offset : offset + n], t, g.latents, return_dict=False)[0]
            offset += n
        if on_step is not None:
            on_step(k - first + 1, len(timesteps) - first)
    latents = torch.empty(
        (sum(len(g.index) for g in groups), *groups[0].latents.shape[1:]),
        dtype=groups[0].latents.dtype,
        device=groups[0].latents.device,
    )
    for g in groups:
        latents[g.index] = g.latents
    return latents


def decode(pipe, latents: torch.Tensor) -> list[Image.Image]:
    pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(pixels, output_type="pil")


def run_chunk(
    pipe,
    samples: list[_Sample],
    init_latents: torch.Tensor | None,
    latent_shape: tuple[int, ...],
    positive: torch.Tensor,
    negative: torch.Tensor,
    steps: int,
    on_step: Callable[[int, int], object] | None = None,
) -> list[Image.Image]:
    device, dtype = positive.device, positive.dtype
    if init_latents is None:  # text2img: every sample starts from pure noise
        samples = [_Sample(s.style, s.seed, 1.0, s.guidance) for s in samples]
    groups, timesteps = make_groups(pipe, samples, steps, device)
    noise = sample_noise(samples, latent_shape, device, dtype)
    for g in groups:
        if init_latents is None:
            g.latents = noise[g.index] * g.scheduler.init_noise_sigma
        else:
            t0 = g.scheduler.timesteps[g.start : g.start + 1].repeat(len(g.index))
            g.latents = g.scheduler.add_noise(
                init_latents.expand(len(g.index), -1, -1, -1), noise[g.index], t0
            )
    guidance = torch.tensor([s.guidance for s in samples], device=device, dtype=dtype)
    latents = denoise(pipe, groups, timesteps, positive, negative, guidance, on_step)
    return decode(pipe, latents)


def stylize(
    models,
    image: Image.Image,
    *,
    styles: Sequence[str] = ARTISTS,
    variants: int = 1,
    seed: int = 0,
    steps: int | None = None,
    mode: str = "img2img",
    caption: str | None = None,
    max_batch: int | None = None,
    strength: float | None = None,
    guidance: float | None = None,
    on_step: Callable[[int, int], object] | None = None,
) -> StylizeResult:
    """Caption the photo and paint it in each style (`variants` pictures per style).

    `strength`/`guidance` override every style's own (the benchmark uses strength 0.6); `on_step(done,
    total)` is called after each denoising step of each chunk and may raise to abort.
    """
    if mode not in MODES:
        raise JobError(BAD_REQUEST, f"unknown mode {mode!r}; use img2img or text2img")
    started = time.perf_counter()
    pipe = models.txt2img
    steps = steps or models.preset.steps
    with torch.inference_mode():
        photo = prepare_image(models, image)  # 1
        caption = caption.strip() if caption and caption.strip() else caption_image(models, photo)  # 2
        samples = build_samples(styles, variants, seed, strength, guidance)  # 3
        positive, negative = encode_prompts(pipe, caption, samples, models.device)
        dtype = positive.dtype
        latent_shape = (
            pipe.unet.config.in_channels,
            photo.height // pipe.vae_scale_factor,
            photo.width // pipe.vae_scale_factor,
        )
        init = encode_image(pipe, photo, models.device, dtype) if mode == "img2img" else None  # 4
        chunk = max(1, max_batch or len(samples))
        pictures: list[Image.Image] = []
        for lo in range(0, len(samples), chunk):  # 5
            part = slice(lo, lo + chunk)
            pictures += run_chunk(
                pipe, samples[part], init, latent_shape, positive[part], negative[part], steps, on_step
            )
    return StylizeResult(
        caption=caption,
        images=[(s.style.id, im) for s, im in zip(samples, pictures, strict=True)],
        seconds=time.perf_counter() - started,
    )
