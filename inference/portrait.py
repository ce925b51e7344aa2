"""Portraits of a user with their LoRA, hot-loaded into the resident pipeline as a named adapter.

Recently used adapters stay loaded (an LRU keyed by the file's path, size and mtime, so a retrained
LoRA is loaded afresh). For one call exactly this user's adapter is enabled; afterwards every LoRA is
disabled again, so stylize jobs and other users see the plain base model. `fast=True` samples with fast
mode's few-step scheduler (inference/fast.py) and its distillation LoRA stacked on the user's for that call.

With ARTBOOTH_FUSE_LORA (on) the adapters are not used: the user's LoRA is fused into the resident weights
for the job (inference/lora_fuse.py) and `paint_text2img` runs the graphed UNet; a fast portrait fuses it
into fast mode's own UNet instead, where the distillation LoRA is already fused, so neither needs a peft
layer (eager: four fast portraits took 0.578 s of H200 time with the two adapters stacked).
"""

from __future__ import annotations

import contextlib
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from contract import kinds
from inference.context import JobContext, JobStopped
from inference.lora_fuse import lora_fuser
from inference.train import adapters
from inference.train.lora_io import LoraInfo, check_lora_for
from jobs.errors import BAD_LORA, BAD_REQUEST, JobError

if TYPE_CHECKING:
    from jobs.models import Job

GUIDANCE = 7.5  # the studies' defaults
LORA_SCALE = 0.8
STEPS = 30
NEGATIVE = (
    "lowres, blurry, out of focus, deformed face, disfigured, bad anatomy, extra limbs, extra fingers, "
    "cartoon, drawing, watermark, text"
)
MAX_SCENE_CHARS = 300


@dataclass(frozen=True)
class PortraitResult:
    prompt: str
    images: list[Image.Image]
    seconds: float
    seed: int
    fast: bool = False  # painted on the few-step schedule


class AdapterCache:
    """Named LoRA adapters kept loaded in one pipeline, least recently used evicted first."""

    def __init__(self, pipe, base_id: str, capacity: int = 4):
        self.pipe, self.base_id, self.capacity = pipe, base_id, capacity
        self.entries: OrderedDict[tuple, str] = OrderedDict()  # (path, size, mtime_ns) -> adapter name

    def acquire(self, path: Path, owner: str) -> tuple[str, LoraInfo]:
        """The adapter name for this file, loading it (and evicting the oldest) when needed."""
        info = check_lora_for(path, self.base_id)
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key], info
        for stale in [k for k in self.entries if k[0] == key[0]]:  # retrained: the old file is gone
            self._evict(stale)
        while len(self.entries) >= self.capacity:
            self._evict(next(iter(self.entries)))
        owner = re.sub(r"\W", "_", str(owner))
        name = f"user_{owner}_{zlib.crc32(repr(key).encode()):08x}"
        try:
            self.pipe.load_lora_weights(str(path), adapter_name=name)
        except Exception as exc:  # shapes for another architecture, torn tensors...
            self._delete(name)
            raise JobError(BAD_LORA, f"{Path(path).name} does not fit the loaded base model: {exc}") from exc
        finally:
            self._disable_all()  # loading activates the new adapter; only portrait() may enable one
        self.entries[key] = name
        return name, info

    def _components(self) -> list[Any]:
        return [adapters.unwrap(self.pipe.unet), self.pipe.text_encoder]

    def _disable_all(self) -> None:
        for component in self._components():
            adapters.set_lora_enabled(component, False)

    def _delete(self, name: str) -> None:
        for component in self._components():
            if adapters.has_adapter(component, name):
                if hasattr(component, "delete_adapters"):
                    component.delete_adapters(name)
                else:
                    component.delete_adapter(name)

    def _evict(self, key: tuple) -> None:
        self._delete(self.entries.pop(key))
        self._disable_all()

    @contextlib.contextmanager
    def only(self, name: str, scale: float, stacked: str | None = None):
        """Exactly this adapter enabled (at `scale`) in every component that has it, for one call;
        `stacked`: another adapter of the UNet (fast mode's) enabled beside it, at full scale."""
        try:
            for component in self._components():
                if stacked and adapters.has_adapter(component, stacked):
                    adapters.activate_stack(component, {name: scale, stacked: 1.0})
                elif adapters.has_adapter(component, name):
                    adapters.activate(component, name, scale)
                else:
                    adapters.set_lora_enabled(component, False)
            yield
        finally:
            self._disable_all()


_caches: dict[int, AdapterCache] = {}


def adapter_cache(models, capacity: int = 4) -> AdapterCache:
    """The cache that belongs to this resident pipeline."""
    cache = _caches.get(id(models.txt2img))
    if cache is None or cache.pipe is not models.txt2img:
        cache = _caches[id(models.txt2img)] = AdapterCache(models.txt2img, models.base_id, capacity)
    return cache


def build_prompt(scene: str, token: str, cls: str) -> str:
    """A full prompt with the identifier is kept as is; a bare scene gets "a photo of sks man, …"."""
    scene = " ".join(scene.split())[:MAX_SCENE_CHARS]
    if not scene:
        raise JobError(BAD_REQUEST, "describe the scene, e.g. /me on the moon")
    if token in scene.split():
        return scene
    return f"a photo of {token} {cls}, {scene}, detailed face, sharp focus, high quality photograph"


def portrait(
    models,
    lora_path: Path,
    scene: str,
    *,
    token: str | None = None,
    cls: str | None = None,
    n: int = 4,
    seed: int = 0,
    guidance: float = GUIDANCE,
    lora_scale: float = LORA_SCALE,
    steps: int = STEPS,
    negative: str = NEGATIVE,
    owner: str = "cli",
    max_batch: int | None = None,
    fast: bool = False,
) -> PortraitResult:
    """`n` portraits of the LoRA's subject in `scene`; seeds seed, seed+1, … (one generator per image).

    `fast`: the preset's few-step schedule (its steps, guidance and eta replace `steps` and `guidance`;
    unguided at guidance <= 1, so `negative` is not used) with the user's LoRA on top of its distillation
    LoRA: fused into fast mode's UNet (ARTBOOTH_FUSE_LORA), or the two adapters stacked.

    `max_batch` splits the images into smaller UNet batches (the worker's retry after running out of GPU
    memory); each image keeps its own generator, so the split does not change which pictures come out.
    """
    if not 1 <= n <= 8:
        raise JobError(BAD_REQUEST, "n must be between 1 and 8")
    if not scene or not scene.strip():
        raise JobError(BAD_REQUEST, "describe the scene, e.g. /me on the moon")
    started = time.perf_counter()
    if getattr(models.settings, "fuse_lora", False):
        unet, sampling, extra = None, contextlib.nullcontext(), {}
        if fast:  # fast mode's UNet (distillation fused in) takes the user's LoRA too, graphed of its own
            from inference import fast as fast_mode
            from inference.graphs import unet_runner

            schedule = models.preset.fast
            steps, guidance = schedule.steps, schedule.guidance
            unet = fast_mode.fast_unet(models)
            sampling = fast_mode.scheduler_swapped(models.txt2img, schedule)
            vae_decode, slice_size = fast_mode.decoding(models, fast_mode.tiny_vae(models))
            extra = {
                "unet": unet_runner(models, unet, "fast_unet_graphs"),
                "eta": schedule.eta,
                "vae_decode": vae_decode,
                "slice_size": slice_size,
            }
        with users_lora(models, Path(lora_path), owner, lora_scale, unet) as info, sampling:
            prompt = build_prompt(scene, token or info.token, cls or info.cls)
            images = paint_text2img(models, prompt, negative, n, seed, guidance, steps, max_batch, **extra)
        return PortraitResult(prompt, images, time.perf_counter() - started, seed, fast)
    cache = adapter_cache(models)
    name, info = cache.acquire(Path(lora_path), owner)
    prompt = build_prompt(scene, token or info.token, cls or info.cls)
    pipe = models.txt2img
    generators = [torch.Generator(device=models.device).manual_seed(seed + i) for i in range(n)]
    chunk = max(1, min(n, max_batch or n))
    images = []
    stacked, sampling, extra = None, contextlib.nullcontext(), {}
    if fast:
        from inference import fast as fast_mode

        schedule = models.preset.fast
        steps, guidance, extra = schedule.steps, schedule.guidance, {"eta": schedule.eta}
        stacked = fast_mode.stacked_adapter(models)
        sampling = contextlib.ExitStack()
        sampling.enter_context(fast_mode.scheduler_swapped(pipe, schedule))
        sampling.enter_context(fast_mode.autoencoder_swapped(pipe, fast_mode.tiny_vae(models)))
    with cache.only(name, lora_scale, stacked), sampling, torch.inference_mode():
        for start in range(0, n, chunk):
            part = generators[start : start + chunk]
            images += pipe(
                [prompt] * len(part),
                negative_prompt=[negative] * len(part),
                height=models.resolution,
                width=models.resolution,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=part,
                **extra,
            ).images
    return PortraitResult(prompt, images, time.perf_counter() - started, seed, fast)


@contextlib.contextmanager
def users_lora(models, lora_path: Path, owner: str, scale: float = LORA_SCALE, unet=None):
    """The user's LoRA on for the block, yielding its info (token, class): fused into the resident weights
    (ARTBOOTH_FUSE_LORA, on: the same UNet modules run, 2.2x faster on an H200) or as a peft adapter.

    `unet`: fuse into that resident UNet (fast mode's) instead of the pipeline's; fused mode only."""
    if getattr(models.settings, "fuse_lora", False):
        info = check_lora_for(Path(lora_path), models.base_id)
        with lora_fuser(models, unet).fused(Path(lora_path), scale):
            yield info
    else:
        cache = adapter_cache(models)
        name, info = cache.acquire(Path(lora_path), owner)
        with cache.only(name, scale):
            yield info


def paint_text2img(
    models,
    prompt: str,
    negative: str,
    n: int,
    seed: int,
    guidance: float,
    steps: int,
    max_batch: int | None,
    *,
    size: tuple[int, int] | None = None,
    unet: Callable[..., torch.Tensor] | None = None,
    eta: float = 0.0,
    vae_decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    slice_size: int | None = None,
) -> list[Image.Image]:
    """What `StableDiffusionPipeline(prompt, generator=[one per image])` paints, through the worker's fast
    UNet (compiled, graphed) and VAE decoder: the same noise (one device generator per image, seeded
    seed + i, drawn as diffusers draws it, and handed to every scheduler step as the pipeline does: TCD's
    per-step noise), scheduler (the pipe's: fast mode swaps its own in around the call), guidance (none at
    guidance <= 1, as diffusers) and postprocessing.

    `size`: (height, width), default the square working resolution. `unet(x, t, embeds)`: the step to run
    instead of the resident UNet's (fast portraits: fast mode's UNet; /pose: the ControlNet's and the
    UNet's, inference/pose.py). `eta`: the pipeline's `eta`, for a scheduler whose step takes one (TCD's
    gamma). `vae_decode`, `slice_size`: another decoder than the worker's VAE (fast mode's tiny one) and
    the pictures it decodes per call."""
    from inference.graphs import unet_runner, vae_decoder
    from inference.stylize import _Sample, decode, denoise, encode_text, make_groups, step_kwargs

    pipe = models.txt2img
    device = models.device
    height, width = size or (models.resolution, models.resolution)
    shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    unet = unet or unet_runner(models)
    vae_decode = vae_decode or vae_decoder(models)
    chunk = max(1, min(n, max_batch or n))
    guided = guidance > 1  # diffusers' do_classifier_free_guidance
    images: list[Image.Image] = []
    with torch.inference_mode():
        positive, negative_embeds = encode_text(
            models, [prompt] * n, [negative or ""] * n if guided else None
        )
        for lo in range(0, n, chunk):
            count = min(chunk, n - lo)
            samples = [_Sample(None, seed + lo + i, 1.0, guidance) for i in range(count)]  # type: ignore[arg-type]
            groups, timesteps = make_groups(pipe, samples, steps, device)
            generators = [torch.Generator(device=device).manual_seed(s.seed) for s in samples]
            noise = [
                torch.randn(
                    shape,
                    generator=generator,
                    device=device,
                    dtype=positive.dtype,
                )
                for generator in generators
            ]
            groups[0].latents = torch.cat(noise) * groups[0].scheduler.init_noise_sigma
            groups[0].step_kwargs = step_kwargs(groups[0].scheduler, generators, eta)
            scale = torch.full((count,), guidance, device=device, dtype=positive.dtype)
            part = slice(lo, lo + count)
            uncond = negative_embeds[part] if guided else None
            latents = denoise(unet, groups, timesteps, positive[part], uncond, scale)
            images += decode(pipe, latents, slice_size, vae_decode)
    return images


def user_lora_path(data_dir: Path, user_id: int | str) -> Path:
    return Path(data_dir) / "loras" / str(user_id) / "lora.safetensors"


def _lora_for_job(ctx: JobContext, job: Job, request: kinds.PortraitRequest | kinds.PoseRequest) -> Path:
    """The payload's LoRA, which must be the requesting user's own (never another user's). /pose uses it too."""
    relative = request.lora or (
        user_lora_path(Path(), job.user_id).as_posix() if job.user_id is not None else None
    )
    if not relative:
        raise JobError(BAD_REQUEST, "no LoRA given")
    data_dir = Path(ctx.data_dir).resolve()
    path = (data_dir / relative).resolve()
    allowed = data_dir / "loras" / (str(job.user_id) if job.user_id is not None else "")
    if not path.is_relative_to(allowed):
        raise JobError(BAD_LORA, "that LoRA does not belong to this user")
    try:
        return ctx.fetch(path.relative_to(data_dir).as_posix())
    except FileNotFoundError:
        raise JobError(BAD_LORA, "no personal model yet: send /train first") from None


def run_portrait_job(ctx: JobContext, job: Job) -> dict[str, Any]:
    """The worker's `portrait` handler: a PortraitRequest (contract/kinds.py) in, n pictures out."""
    request = kinds.PortraitRequest.from_payload(job.payload)
    path = _lora_for_job(ctx, job, request)
    seed = request.seed if request.seed is not None else job.id
    if not ctx.report(0.05, "painting"):
        raise JobStopped()
    result = portrait(
        ctx.models,
        path,
        request.scene,
        token=request.token,
        cls=request.cls,
        n=request.n,
        seed=seed,
        owner=str(job.user_id if job.user_id is not None else "anon"),
        max_batch=ctx.max_batch,
        fast=bool(request.fast),
    )
    images = [ctx.save_image(image, f"{i:02d}.jpg") for i, image in enumerate(result.images)]
    return kinds.PortraitResult(
        result.prompt, images, round(result.seconds, 3), seed, fast=result.fast
    ).to_dict()
