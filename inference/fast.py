"""Fast mode: the preset's few-step distilled schedule (presets.FastSchedule, TCD-SD15 for `sd15`).

Why a second UNet for the album rather than fusing the LoRA into the resident one and unfusing after:
unfusing subtracts the delta it added, and in fp16 `(W + dW) - dW` is not `W`, so the normal schedule's
pictures would drift a little after every fast job; restoring a saved copy instead rewrites every weight
on each switch and may re-point tensors under a captured CUDA graph. A copy of the UNet with the LoRA
fused in once (+1.7 GB fp16 on a 141 GB H200) switches for free, runs at the plain UNet's speed (no LoRA
layers, CUDA graphs of its own), and leaves the normal UNet's memory untouched: bit-identical by
construction. Fast portraits fuse the user's LoRA into this UNet for the job (inference/lora_fuse.py:
its touched attention weights are copied back to their distillation-fused values afterwards, in place,
so its graphs stay valid). With ARTBOOTH_FUSE_LORA=0 the distillation LoRA is instead a second named
adapter of the resident UNet, stacked with the user's (`set_adapter` of both) for one call and disabled
with it afterwards.

Why a tiny autoencoder (TAESD, `madebyollin/taesd`: the `fast_vae` role): with three UNet steps at batch 4
(about 55 ms on an H200), SD's VAE took more of a fast album than the denoising: 62 ms to decode the four
pictures and more to encode the photo. TAESD is distilled from that VAE into the same latent space (so the
UNet and its LoRAs see the latents they know); it decodes four 512-px pictures in a few milliseconds, for
slightly softer fine detail, which is the trade fast mode already makes (the real-time SD demos pair it
with few-step LoRAs for the same reason). It encodes the album's photo and decodes fast albums and fast
portraits; the normal schedule never touches it. ARTBOOTH_FAST_TINY_VAE=0 keeps the full VAE, and without
its weights fast mode falls back to the full VAE (logged once) rather than failing a job.

`tiny` and `sd15-random` build a random LoRA of the real one's shape (rank, target layers) in diffusers'
LoRA file format, so it loads through the same `lora_state_dict` / `load_lora_into_unet` path.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import torch

from inference.presets import FastSchedule, ModelPreset

log = logging.getLogger(__name__)

ADAPTER = "artbooth_fast"  # the distillation LoRA as an adapter of the resident UNet (unfused portraits)
WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # the hub repo's file name, and the twin's
TWIN_VERSION = 1  # bump when build_lora_twin writes something else


def schedule_of(models) -> FastSchedule:
    return models.preset.fast


# --- the scheduler ----------------------------------------------------------------------------------


def _tcd_class():
    from diffusers import TCDScheduler

    class SeededTCDScheduler(TCDScheduler):
        """TCD whose per-step noise (gamma > 0) is reproducible when the caller passes no generator.

        The album loop steps a scheduler per strength group without generators; an unseeded draw would
        make the same photo give other pictures each time. The noise then comes from a CPU generator
        reset in `set_timesteps`, so a run is repeatable (per chunk: a batch split draws it differently).
        """

        def set_timesteps(self, *args, **kwargs):
            self._noise = torch.Generator("cpu").manual_seed(0)
            return super().set_timesteps(*args, **kwargs)

        def step(self, model_output, timestep, sample, eta=0.3, generator=None, return_dict=True):
            if generator is None and eta > 0:
                generator = getattr(self, "_noise", None) or torch.Generator("cpu").manual_seed(0)
            return super().step(model_output, timestep, sample, eta, generator, return_dict)

    return SeededTCDScheduler


SCHEDULERS = {"tcd": _tcd_class}


def make_scheduler(schedule: FastSchedule, base_config: Any):
    """The schedule's scheduler on the base model's noise schedule (betas), from the keys it knows:
    DPM-Solver's own keys would otherwise ride along and be warned about at every copy the loop makes."""
    cls = SCHEDULERS[schedule.scheduler]()
    known = inspect.signature(cls.__init__).parameters
    return cls.from_config({k: v for k, v in dict(base_config).items() if k in known})


@contextlib.contextmanager
def scheduler_swapped(pipe, schedule: FastSchedule):
    """The pipe samples with the few-step scheduler inside the block, with its own one again after it."""
    normal = pipe.scheduler
    pipe.scheduler = make_scheduler(schedule, normal.config)
    try:
        yield pipe.scheduler
    finally:
        pipe.scheduler = normal


@contextlib.contextmanager
def autoencoder_swapped(pipe, vae):
    """diffusers' pipeline encodes and decodes with `vae` (fast mode's tiny one) inside the block; None:
    with its own. For the calls that go through the pipeline itself (unfused fast portraits)."""
    normal = pipe.vae
    pipe.vae = vae or normal
    try:
        yield
    finally:
        pipe.vae = normal


# --- the LoRA: loaded, fused into a second UNet, or stacked as an adapter -------------------------------


def lora_state(models) -> tuple[dict, Any]:
    """(state dict, network alphas) of the `fast` role, converted to diffusers' format; ModelMissing if absent."""
    from diffusers import StableDiffusionPipeline

    from inference.models import _load, resolve

    source = resolve(models.settings, "fast")
    return _load("fast", source, lambda: StableDiffusionPipeline.lora_state_dict(source))


def fast_unet(models):
    """The base UNet with the distillation LoRA fused in, built on first use and kept resident."""
    unet = models._lazy.get("fast_unet")
    if unet is not None:
        return unet
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from inference.models import _load, resolve

    path = resolve(models.settings, "base")
    state, alphas = lora_state(models)
    unet = _load(
        "base",
        path,
        lambda: UNet2DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=models.dtype),
    )
    unet.to(models.device).eval()
    StableDiffusionPipeline.load_lora_into_unet(state, alphas, unet=unet, adapter_name=ADAPTER)
    unet.fuse_lora(lora_scale=1.0, adapter_names=[ADAPTER])
    unet.unload_lora()  # the fused weights stay; the LoRA layers go (plain modules: graphable, no overhead)
    unet.requires_grad_(False)
    models._lazy["fast_unet"] = unet
    log.info("fast mode: %s fused into a second UNet", models.settings.overrides.get("fast") or "the LoRA")
    return unet


def tiny_vae(models):
    """The `fast_vae` autoencoder (TAESD), loaded on first use and kept resident; None means the base VAE
    (ARTBOOTH_FAST_TINY_VAE=0, or its weights are missing: warned once, never a failed job)."""
    if "fast_vae" in models._lazy:
        return models._lazy["fast_vae"]
    vae = None
    if models.settings.fast_tiny_vae:
        from diffusers import AutoencoderTiny

        from inference.models import ModelMissing, _load, resolve

        try:
            path = resolve(models.settings, "fast_vae")
            vae = _load(
                "fast_vae", path, lambda: AutoencoderTiny.from_pretrained(path, torch_dtype=models.dtype)
            )
        except ModelMissing as missing:
            log.warning("fast mode: %s; it encodes and decodes with the base model's VAE", missing)
        else:
            vae = vae.to(models.device).eval().requires_grad_(False)
    models._lazy["fast_vae"] = vae
    return vae


# Pictures per call of the tiny autoencoder: its activations are an eighth of SD's VAE's (64 channels
# against 512), so a batch of two fast albums decodes at once; slicing it as SD's VAE is sliced only added
# launches (the H200 run that did measured it).
TINY_VAE_SLICE = 8


def decoding(models, vae) -> tuple[Callable[[torch.Tensor], torch.Tensor], int | None]:
    """(decoder, pictures per call) for `stylize.decode`: the tiny autoencoder `vae` (`tiny_vae`), or for
    None the worker's VAE decoder, sliced by `graphs.decode_slice`."""
    from inference.graphs import plain_decoder, vae_decoder

    if vae is None:
        return vae_decoder(models), None
    return plain_decoder(vae), TINY_VAE_SLICE


def stacked_adapter(models) -> str:
    """Load the distillation LoRA into the resident UNet as a named adapter (once), disabled; its name."""
    from diffusers import StableDiffusionPipeline

    from inference.train import adapters

    unet = adapters.unwrap(models.txt2img.unet)
    if not adapters.has_adapter(unet, ADAPTER):
        state, alphas = lora_state(models)
        StableDiffusionPipeline.load_lora_into_unet(state, alphas, unet=unet, adapter_name=ADAPTER)
        adapters.set_lora_enabled(unet, False)  # only a portrait call enables it, beside the user's
    return ADAPTER


# --- the random twin ------------------------------------------------------------------------------------


def _targeted(name: str, module: torch.nn.Module, targets: tuple[str, ...]) -> bool:
    """peft's rule for `target_modules` given as names: the module's path is a target or ends with one."""
    fits = isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
    return fits and any(name == t or name.endswith("." + t) for t in targets)


def lora_twin_layers(unet_config: dict, schedule: FastSchedule, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random `lora_A`/`lora_B` weights (peft keys) for every targeted layer of a UNet of this config.

    The UNet is built on the meta device (shapes only, no memory); B is not zero as in a fresh adapter,
    so the twin really changes the UNet's output, as the real LoRA does.
    """
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_config)
    generator = torch.Generator("cpu").manual_seed(seed)
    r = schedule.rank
    layers: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if not _targeted(name, module, schedule.targets):
            continue
        if isinstance(module, torch.nn.Conv2d):
            a_shape = (r, module.in_channels, *module.kernel_size)
            b_shape = (module.out_channels, r, 1, 1)
        else:
            a_shape, b_shape = (r, module.in_features), (module.out_features, r)
        fan_in = a_shape[1] * (a_shape[2] * a_shape[3] if len(a_shape) == 4 else 1)
        layers[f"{name}.lora_A.weight"] = torch.randn(a_shape, generator=generator) / fan_in**0.5
        layers[f"{name}.lora_B.weight"] = torch.randn(b_shape, generator=generator) * 0.02 / r**0.5
    return layers


def build_lora_twin(unet_config: dict, schedule: FastSchedule, out: Path, dtype: torch.dtype) -> None:
    """diffusers' LoRA file (`unet.` prefix, adapter metadata), as `save_lora_weights` writes it."""
    from diffusers import StableDiffusionPipeline

    layers = {k: v.to(dtype) for k, v in lora_twin_layers(unet_config, schedule).items()}
    metadata = {"r": schedule.rank, "lora_alpha": schedule.rank, "target_modules": list(schedule.targets)}
    StableDiffusionPipeline.save_lora_weights(
        out, unet_lora_layers=layers, unet_lora_adapter_metadata=metadata, weight_name=WEIGHT_NAME
    )


def ensure_lora_twin(preset: ModelPreset, models_dir: Path) -> Path:
    """`<models_dir>/<preset>/fast/`, built once (atomically) for the built presets (tiny, sd15-random)."""
    from inference.tiny import SPECS, build_atomically

    spec = SPECS[preset.name]
    fingerprint = sha256(
        json.dumps([TWIN_VERSION, spec.fingerprint(), repr(preset.fast)]).encode()
    ).hexdigest()[:16]
    final = Path(models_dir) / preset.name / "fast"
    return build_atomically(
        final,
        fingerprint,
        lambda tmp: build_lora_twin(spec.unet, preset.fast, tmp, spec.save_dtype),
        preset=preset.name,
        role="fast",
    )
