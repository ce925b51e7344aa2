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
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from contract.images import prepare_for_sd
from contract.styles import ARTISTS, STYLES, StylePreset
from inference.captioner import FALLBACK_CAPTION
from jobs.errors import BAD_REQUEST, JobError

MODES = ("img2img", "text2img")


@dataclass
class StylizeResult:
    caption: str
    images: list[tuple[str, Image.Image]]  # (style id, picture), in request order
    seconds: float
    fast: bool = False  # painted on the few-step schedule


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
    pipe, caption: str, samples: list[_Sample], device: torch.device, guided: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(positive, negative) text embeddings, one row per sample, encoded in one text-encoder batch.

    Unguided (a distilled schedule), there is no negative: None."""
    positive, negative = pipe.encode_prompt(
        [s.style.render(caption) for s in samples],
        device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=guided,
        negative_prompt=[s.style.negative for s in samples] if guided else None,
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


def _lora_enabled(unet: torch.nn.Module) -> bool:
    """Is any LoRA layer of the UNet switched on (enabled, with an active adapter, not merged away)?"""
    return _module_state(unet)[1]


def _module_state(unet: torch.nn.Module) -> tuple[int, bool]:
    """(module count, any LoRA layer on), in one walk over the UNet's modules."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    count, lora_on = 0, False
    for m in unet.modules():
        count += 1
        if isinstance(m, BaseTunerLayer) and not m.disable_adapters and m.active_adapters:
            lora_on = True
    return count, lora_on


class GraphedUNet:
    """Replays the UNet as CUDA graphs, one per input shape (active batch x latent size).

    On an H100 an eager SD 1.5 step at batch 8 takes 32 ms of GPU time and 28 ms just to launch its
    ~1000 kernels from Python, so the loop ran at the host's pace; a replay launches in 0.3 ms and runs
    in 28.5 ms, with bit-identical output. Graphs share one memory pool, are kept for the 8 latest shapes,
    and are skipped while a LoRA layer is switched on (loaded-but-disabled portrait adapters run only their
    base layers, so the graphs stay valid) or the UNet is compiled (ARTBOOTH_CUDA_GRAPHS=0: off).
    """

    def __init__(self, unet, max_graphs: int = 8):
        self.unet = unet
        self.max_graphs = max_graphs
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[tuple, tuple] = {}
        self.signature = _module_state(unet)[0]  # adapters or swapped modules change the count

    def _eager(self, x, t, embeds):
        return self.unet(x, t, encoder_hidden_states=embeds, return_dict=False)[0]

    def __call__(self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        signature, lora_on = _module_state(self.unet)  # one walk per step: this is the hot path
        if lora_on or hasattr(self.unet, "_orig_mod"):
            return self._eager(x, t, embeds)
        if signature != self.signature:
            self.graphs.clear()
            self.signature = signature
        key = (tuple(x.shape), tuple(embeds.shape), x.dtype)
        if key not in self.graphs:
            self._capture(key, x, t, embeds)
        graph, s_x, s_t, s_embeds, s_out = self.graphs[key]
        s_x.copy_(x)
        s_t.copy_(t)
        s_embeds.copy_(embeds)
        graph.replay()
        return s_out.clone()

    def _capture(self, key, x, t, embeds) -> None:
        if len(self.graphs) >= self.max_graphs:
            self.graphs.pop(next(iter(self.graphs)))
        static = (x.clone(), t.clone().reshape(()), embeds.clone())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # cuDNN autotuning and lazy inits happen outside the capture
            for _ in range(2):
                self._eager(*static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self._eager(*static)
        self.graphs[key] = (graph, *static, out)


def unet_runner(
    models, unet=None, cache_key: str = "unet_graphs"
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The UNet call used by the loop: graphed on CUDA (see GraphedUNet), plain elsewhere.

    `unet`/`cache_key`: another resident UNet (fast mode's) keeps graphs of its own under its own key."""
    unet = models.txt2img.unet if unet is None else unet
    if models.device.type != "cuda" or not models.settings.cuda_graphs:
        return lambda x, t, embeds: unet(x, t, encoder_hidden_states=embeds, return_dict=False)[0]
    lazy = models._lazy
    if lazy.get(cache_key) is None or lazy[cache_key].unet is not unet:
        lazy[cache_key] = GraphedUNet(unet)
    return lazy[cache_key]


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


def decode(pipe, latents: torch.Tensor, slice_size: int = 4) -> list[Image.Image]:
    """VAE-decode in slices of 4 (at 512 px each picture's decoder activations take ~0.6 GiB in fp16),
    then diffusers' postprocess arithmetic on the GPU, so only uint8 pixels cross to the host."""
    images: list[Image.Image] = []
    for lo in range(0, len(latents), slice_size):
        part = latents[lo : lo + slice_size] / pipe.vae.config.scaling_factor
        pixels = pipe.vae.decode(part, return_dict=False)[0]
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
    latents = denoise(unet, groups, timesteps, positive, negative, guidance, on_step)
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
    fast: bool = False,
) -> StylizeResult:
    """Caption the photo and paint it in each style (`variants` pictures per style).

    `strength`/`guidance` override every style's own (the benchmark uses strength 0.6); `on_step(done,
    total)` is called after each denoising step of each chunk and may raise to abort. `fast`: the
    preset's few-step schedule, whose own steps and guidance replace `steps` and the styles' guidance.
    """
    if mode not in MODES:
        raise JobError(BAD_REQUEST, f"unknown mode {mode!r}; use img2img or text2img")
    started = time.perf_counter()
    pipe = models.txt2img
    steps = steps or models.preset.steps
    schedule = models.preset.fast if fast else None
    if schedule is not None:  # inference/fast.py: a second UNet with the LoRA fused, and its scheduler
        from inference import fast as fast_mode

        steps = schedule.album_steps
        guidance = schedule.guidance if schedule.guidance > 1 else guidance  # a guided schedule's own
    swapped = fast_mode.scheduler_swapped(pipe, schedule) if schedule else contextlib.nullcontext()
    with torch.inference_mode(), swapped:
        photo = prepare_image(models, image)  # 1
        caption = caption.strip() if caption and caption.strip() else caption_image(models, photo)  # 2
        samples = build_samples(styles, variants, seed, strength, guidance)  # 3
        dtype = pipe.unet.dtype
        # 4: the VAE encode is queued first, so the GPU works while the CPU tokenizes the prompts
        init = encode_image(pipe, photo, models.device, dtype) if mode == "img2img" else None
        guided = schedule is None or schedule.guidance > 1
        positive, negative = encode_prompts(pipe, caption, samples, models.device, guided)
        latent_shape = (
            pipe.unet.config.in_channels,
            photo.height // pipe.vae_scale_factor,
            photo.width // pipe.vae_scale_factor,
        )
        if schedule is None:
            unet = unet_runner(models)
        else:
            unet = unet_runner(models, fast_mode.fast_unet(models), "fast_unet_graphs")
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
            )
    return StylizeResult(
        caption=caption,
        images=[(s.style.id, im) for s, im in zip(samples, pictures, strict=True)],
        seconds=time.perf_counter() - started,
        fast=fast,
    )
