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
`fast=True` runs it on the preset's few-step schedule (inference/fast.py): its own UNet and scheduler, and
without guidance the UNet sees each picture once instead of twice.

Issue 9 (the worker at the GPU's speed): photos are fitted to a few shape buckets (inference.buckets);
`stylize_batch` paints several photos (several users' jobs of one bucket) in the same UNet batch, each with
its own latents, caption and seeds, so each gets exactly the pictures it would get alone; on CUDA every
(batch, bucket) shape of the UNet is replayed as a CUDA graph, and with ARTBOOTH_COMPILE=1 the shapes that
carry the work are compiled at the worker's start (inference/graphs.py).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from contract.styles import ARTISTS, STYLES, StylePreset
from inference.buckets import fit_image
from inference.captioner import FALLBACK_CAPTION
from inference.graphs import decode_slice, plain_decoder, text_runner, unet_runner, vae_decoder
from jobs.errors import BAD_REQUEST, JobError

MODES = ("img2img", "text2img")


@dataclass
class StylizeResult:
    caption: str
    images: list[tuple[str, Image.Image]]  # (style id, picture), in request order
    seconds: float
    fast: bool = False  # painted on the few-step schedule


@dataclass
class StylizeItem:
    """One photo of a batch (`stylize_batch`), with its own styles, seed and caption."""

    image: Image.Image
    styles: Sequence[str] = ARTISTS
    variants: int = 1
    seed: int = 0
    caption: str | None = None
    strength: float | None = None
    guidance: float | None = None


@dataclass
class _Sample:
    style: StylePreset
    seed: int
    strength: float
    guidance: float
    photo: int = 0  # which photo of the batch this picture paints


# 1. prepare the image ---------------------------------------------------------------------------------


def prepare_image(models, image: Image.Image) -> Image.Image:
    """The photo at its shape bucket (default), or at its own aspect with ARTBOOTH_BUCKETS=0."""
    return fit_image(image, models.resolution, getattr(models.settings, "buckets", True))


# 2. caption -------------------------------------------------------------------------------------------


def caption_image(models, image: Image.Image) -> str:
    return caption_images(models, [image])[0]


def caption_images(models, images: list[Image.Image]) -> list[str]:
    """One batched BLIP call for every photo of a batch."""
    if models.captioner is None:
        return [FALLBACK_CAPTION] * len(images)
    return models.captioner.caption(images)


# 3. prompts -------------------------------------------------------------------------------------------


def build_samples(
    styles: Sequence[str],
    variants: int,
    seed: int,
    strength: float | None,
    guidance: float | None,
    photo: int = 0,
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
            photo,
        )
        for i, p in enumerate(presets)
    ]


def encode_prompts(
    models, caption: str | Sequence[str], samples: list[_Sample], guided: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(positive, negative) text embeddings, one row per sample, encoded in one text-encoder batch.

    `caption` is one caption for every sample, or one per photo of the batch (indexed by `sample.photo`).
    Unguided (a distilled schedule), there is no negative: None.
    """
    captions = [caption] if isinstance(caption, str) else list(caption)
    return encode_text(
        models,
        [s.style.render(captions[s.photo]) for s in samples],
        [s.style.negative for s in samples] if guided else None,
    )


def encode_text(
    models, prompts: Sequence[str], negatives: Sequence[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(positive, negative or None) embeddings, as diffusers' `encode_prompt` gives them for SD 1.5 (no
    clip skip, no textual inversion), but each distinct text once and all in one text-encoder batch,
    replayed as a CUDA graph on a GPU (inference.graphs.text_runner)."""
    pipe = models.txt2img
    texts = [*prompts, *(negatives or [])]
    unique = list(dict.fromkeys(texts))
    tokens = pipe.tokenizer(
        unique,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    ids = tokens.input_ids.to(models.device)
    if getattr(pipe.text_encoder.config, "use_attention_mask", False):  # not SD 1.5's CLIP; kept exact
        hidden = pipe.text_encoder(ids, attention_mask=tokens.attention_mask.to(models.device))[0]
    else:
        hidden = text_runner(models)(ids)
    rows = torch.tensor([unique.index(t) for t in texts], device=models.device)
    embeds = hidden.to(pipe.text_encoder.dtype)[rows]
    return embeds[: len(prompts)], (embeds[len(prompts) :] if negatives is not None else None)


# 4. latents and timesteps -----------------------------------------------------------------------------


def encode_image(pipe, image: Image.Image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The photo's VAE latents (1, 4, H/8, W/8), encoded once and shared by every sample."""
    return encode_images(pipe, [image], device, dtype)


def encode_images(
    pipe, images: list[Image.Image], device: torch.device, dtype: torch.dtype, vae=None
) -> torch.Tensor:
    """The photos' latents (P, 4, H/8, W/8), scaled as the UNet denoises them, in one encoder batch (the
    photos share one size). `vae`: another autoencoder than the pipe's (fast mode's tiny one)."""
    vae = vae or pipe.vae
    pixels = pipe.image_processor.preprocess(images).to(device=device, dtype=dtype)
    encoded = vae.encode(pixels)
    # AutoencoderKL gives a distribution (its mode: no sampling noise on the photo); AutoencoderTiny, latents
    latents = encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latents
    return latents * vae.config.scaling_factor


def sample_generators(samples: list[_Sample]) -> list[torch.Generator]:
    """One CPU generator per picture, seeded with its seed: its initial noise, then (a scheduler that adds
    noise at each step: fast mode's TCD) its step noise, as diffusers' pipelines use `generator=[...]`.
    So a picture is the same whatever batch or chunk it is painted in."""
    return [torch.Generator("cpu").manual_seed(s.seed) for s in samples]


def sample_noise(generators: list[torch.Generator], shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    """The pictures' initial noise, one row per generator, on the CPU: the same seed gives the same noise
    on any device or batch.

    Drawn in `dtype`, as diffusers' `randn_tensor` draws it for a CPU generator: torch's CPU normal sampler
    has a half-precision path of its own (torch 2.11 on the H200 host: not fp32 noise rounded), and
    drawing fp32 then casting made every fp16 picture differ from plain diffusers' (13.4 dB PSNR).
    """
    noise = [torch.randn((1, *shape), generator=g, dtype=dtype) for g in generators]
    return torch.cat(noise).to(device=device)


def step_kwargs(scheduler, generators: list[torch.Generator], eta: float) -> dict:
    """diffusers' `prepare_extra_step_kwargs`: `eta` and the generators, for a step that takes them."""
    accepts = inspect.signature(scheduler.step).parameters
    kwargs: dict = {"eta": eta} if "eta" in accepts else {}
    if "generator" in accepts:
        kwargs["generator"] = generators
    return kwargs


@dataclass
class _Group:
    """Samples sharing one strength: one scheduler copy, joining the loop at `start`."""

    index: list[int]  # positions in the chunk
    scheduler: object
    start: int  # index into the full timestep grid where this group enters
    latents: torch.Tensor | None = None
    step_kwargs: dict = field(default_factory=dict)  # more arguments of its scheduler's step (`step_kwargs`)


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


# 5. the denoising loop (the UNet and VAE runners: inference.graphs) ------------------------------------


def denoise(
    unet: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    groups: list[_Group],
    timesteps: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor | None,
    guidance: torch.Tensor,
    on_step: Callable[[int, int], object] | None = None,
) -> torch.Tensor:
    first = min(g.start for g in groups)
    conditioning: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # per number of active groups
    for k in range(first, len(timesteps)):
        t = timesteps[k]
        active = [g for g in groups if g.start <= k]
        if len(active) not in conditioning:  # the active set only grows: build its inputs once
            idx = torch.tensor([i for g in active for i in g.index], device=positive.device)
            embeds = positive[idx] if negative is None else torch.cat([negative[idx], positive[idx]])
            conditioning[len(active)] = (embeds, guidance[idx].view(-1, 1, 1, 1))
        embeds, scale = conditioning[len(active)]
        x = torch.cat([g.scheduler.scale_model_input(g.latents, t) for g in active])
        if negative is None:  # unguided (a distilled schedule): one UNet pass per picture
            pred = unet(x, t, embeds)
        else:
            uncond, cond = unet(torch.cat([x, x]), t, embeds).chunk(2)
            pred = uncond + scale * (cond - uncond)
        offset = 0
        for g in active:
            n = len(g.index)
            g.latents = g.scheduler.step(
                pred[offset : offset + n], t, g.latents, **g.step_kwargs, return_dict=False
            )[0]
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


def decode(pipe, latents: torch.Tensor, slice_size: int | None = None, vae_decode=None) -> list[Image.Image]:
    """VAE-decode in slices (`inference.graphs.decode_slice`: at 512 px each picture's decoder activations
    take ~0.75 GiB in fp16), then diffusers' postprocess arithmetic on the GPU, so only uint8 pixels cross
    to the host. `vae_decode`: scaled latents -> pixels (inference.graphs.plain_decoder's contract);
    default the pipe's VAE."""
    vae_decode = vae_decode or plain_decoder(pipe.vae)
    slice_size = slice_size or decode_slice(latents, pipe.vae_scale_factor)
    images: list[Image.Image] = []
    for lo in range(0, len(latents), slice_size):
        pixels = vae_decode(latents[lo : lo + slice_size])
        pixels = ((pixels / 2 + 0.5).clamp(0, 1).float() * 255).round().to(torch.uint8)
        images += [Image.fromarray(a) for a in pixels.permute(0, 2, 3, 1).cpu().numpy()]
    return images


def run_chunk(
    pipe,
    unet: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    samples: list[_Sample],
    init_latents: torch.Tensor | None,
    latent_shape: tuple[int, ...],
    positive: torch.Tensor,
    negative: torch.Tensor | None,
    steps: int,
    on_step: Callable[[int, int], object] | None = None,
    vae_decode=None,
    eta: float = 0.0,
    slice_size: int | None = None,
) -> list[Image.Image]:
    """Denoise and decode `samples`; `init_latents` holds one row per photo (`sample.photo` picks it).
    `eta`: for a scheduler whose step takes one (fast mode's TCD: its gamma). `slice_size`: pictures per
    decoder call (default: `decode_slice`, for SD's VAE)."""
    device, dtype = positive.device, positive.dtype
    if init_latents is None:  # text2img: every sample starts from pure noise
        samples = [_Sample(s.style, s.seed, 1.0, s.guidance, s.photo) for s in samples]
    groups, timesteps = make_groups(pipe, samples, steps, device)
    generators = sample_generators(samples)
    noise = sample_noise(generators, latent_shape, device, dtype)
    for g in groups:
        g.step_kwargs = step_kwargs(g.scheduler, [generators[i] for i in g.index], eta)
        if init_latents is None:
            g.latents = noise[g.index] * g.scheduler.init_noise_sigma
        else:
            t0 = g.scheduler.timesteps[g.start : g.start + 1].repeat(len(g.index))
            photos = init_latents[[samples[i].photo for i in g.index]]
            g.latents = g.scheduler.add_noise(photos, noise[g.index], t0)
    guidance = torch.tensor([s.guidance for s in samples], device=device, dtype=dtype)
    latents = denoise(unet, groups, timesteps, positive, negative, guidance, on_step)
    return decode(pipe, latents, slice_size, vae_decode)


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
    fast: bool = False,
) -> StylizeResult:
    """Caption the photo and paint it in each style (`variants` pictures per style).

    `strength`/`guidance` override every style's own (the benchmark uses strength 0.6); `on_step(done,
    total)` is called after each denoising step of each chunk and may raise to abort. `fast`: the
    preset's few-step schedule, whose own steps and guidance replace `steps` and the styles' guidance.
    """
    item = StylizeItem(image, styles, variants, seed, caption, strength, guidance)
    return stylize_batch(
        models, [item], steps=steps, mode=mode, max_batch=max_batch, on_step=on_step, fast=fast
    )[0]


def stylize_batch(
    models,
    items: Sequence[StylizeItem],
    *,
    steps: int | None = None,
    mode: str = "img2img",
    max_batch: int | None = None,
    on_step: Callable[[int, int], object] | None = None,
    fast: bool = False,
) -> list[StylizeResult]:
    """Paint several photos (of one shape bucket) in shared UNet batches: one result per item, each the
    pictures that item would get alone (its own caption, latents and per-picture seeds). `fast`: every
    item on the few-step schedule (the batch runner never mixes schedules in one batch)."""
    if mode not in MODES:
        raise JobError(BAD_REQUEST, f"unknown mode {mode!r}; use img2img or text2img")
    started = time.perf_counter()
    pipe = models.txt2img
    steps = steps or models.preset.steps
    schedule = models.preset.fast if fast else None
    if schedule is not None:  # inference/fast.py: a second UNet with the LoRA fused, and its scheduler
        from inference import fast as fast_mode

        steps = schedule.album_steps
        if schedule.guidance > 1:  # a guided schedule's own guidance replaces the styles'
            items = [_with_guidance(item, schedule.guidance) for item in items]
    swapped = fast_mode.scheduler_swapped(pipe, schedule) if schedule else contextlib.nullcontext()
    with torch.inference_mode(), swapped:
        photos = [prepare_image(models, item.image) for item in items]  # 1
        if len({p.size for p in photos}) != 1:
            raise ValueError(f"a batch paints photos of one size, got {sorted({p.size for p in photos})}")
        samples = [  # 3
            sample
            for p, item in enumerate(items)
            for sample in build_samples(
                item.styles, item.variants, item.seed, item.strength, item.guidance, p
            )
        ]
        dtype = pipe.unet.dtype
        tiny = fast_mode.tiny_vae(models) if schedule else None  # fast mode's autoencoder, or None
        # 4, queued before the caption (2), so the GPU encodes while BLIP's processor
        # prepares the photo on the CPU
        init = encode_images(pipe, photos, models.device, dtype, tiny) if mode == "img2img" else None
        captions = _captions(models, items, photos)  # 2
        guided = schedule is None or schedule.guidance > 1
        positive, negative = encode_prompts(models, captions, samples, guided)
        latent_shape = (
            pipe.unet.config.in_channels,
            photos[0].height // pipe.vae_scale_factor,
            photos[0].width // pipe.vae_scale_factor,
        )
        if schedule is None:
            unet = unet_runner(models)
        else:
            unet = unet_runner(models, fast_mode.fast_unet(models), "fast_unet_graphs")
        vae_decode, slice_size = fast_mode.decoding(models, tiny) if schedule else (vae_decoder(models), None)
        chunk = max(1, max_batch or len(samples))
        pictures: list[Image.Image] = []
        for lo in range(0, len(samples), chunk):  # 5
            part = slice(lo, lo + chunk)
            pictures += run_chunk(
                pipe,
                unet,
                samples[part],
                init,
                latent_shape,
                positive[part],
                None if negative is None else negative[part],
                steps,
                on_step,
                vae_decode,
                schedule.eta if schedule else 0.0,
                slice_size,
            )
    seconds = time.perf_counter() - started
    results = [StylizeResult(captions[p], [], seconds, fast) for p in range(len(items))]
    for sample, picture in zip(samples, pictures, strict=True):
        results[sample.photo].images.append((sample.style.id, picture))
    return results


def _captions(models, items: Sequence[StylizeItem], photos: list[Image.Image]) -> list[str]:
    """Each item's own caption, or BLIP's for the photos that have none (one batched call)."""
    captions = [item.caption.strip() if item.caption and item.caption.strip() else None for item in items]
    missing = [p for p, c in enumerate(captions) if c is None]
    for p, caption in zip(missing, caption_images(models, [photos[p] for p in missing]), strict=True):
        captions[p] = caption
    return captions  # type: ignore[return-value]


def _with_guidance(item: StylizeItem, guidance: float) -> StylizeItem:
    return StylizeItem(
        item.image, item.styles, item.variants, item.seed, item.caption, item.strength, guidance
    )
