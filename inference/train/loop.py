"""train_lora: DreamBooth-LoRA on the resident pipeline, yielding to interactive jobs between steps.

Stages: 1. class images (cached per base model and class) → 2. latents and prompt embeddings, once →
3. a training adapter on the shared UNet (and text encoder) → 4. the loop → 5. save, and in every case
remove the adapter so nothing leaks into later jobs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from inference.train import adapters
from inference.train.class_images import class_dir, ensure_class_images
from inference.train.config import TrainConfig
from inference.train.dataset import DreamBoothBatches, class_latents, encode_images
from inference.train.eta import StepRate
from inference.train.lora_io import save_lora

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
CLASS_PHASE = 0.2  # share of the progress bar the class images take when they must be generated


class TrainingCancelled(Exception):
    """progress() returned False: the job was cancelled or the worker is stopping."""


@dataclass(frozen=True)
class TrainProgress:
    phase: str  # "class_images" | "training"
    done: int
    total: int
    fraction: float  # of the whole job
    eta_s: float | None
    loss: float | None = None


@dataclass(frozen=True)
class TrainResult:
    path: Path
    steps: int
    seconds: float  # wall time, including class images and time yielded to other jobs
    train_seconds: float  # the optimizer loop alone, without yielded time
    steps_per_s: float
    class_images_generated: int
    yielded: int  # how many times interactive jobs ran in between
    yielded_seconds: float
    loss: float
    config: TrainConfig


class _Gate:
    """Progress reports (throttled), cancellation, and preemption between steps."""

    def __init__(self, progress, should_yield, yield_now, pause):
        self.progress, self.should_yield, self.yield_now, self.pause = (
            progress,
            should_yield,
            yield_now,
            pause,
        )
        self.last_report = 0.0
        self.yielded = 0
        self.yielded_s = 0.0

    def due(self, *, force: bool = False) -> bool:
        """Is a report due? Asked first so the loss is read back from the GPU only when it is."""
        return self.progress is not None and (
            force or time.monotonic() - self.last_report >= PROGRESS_EVERY_S
        )

    def report(self, event: TrainProgress, *, force: bool = False) -> None:
        if not self.due(force=force):
            return
        self.last_report = time.monotonic()
        if self.progress(event) is False:
            raise TrainingCancelled()

    def maybe_yield(self) -> None:
        if self.should_yield is None or self.yield_now is None or not self.should_yield():
            return
        started = time.perf_counter()
        with self.pause():
            self.yield_now()
        self.yielded += 1
        self.yielded_s += time.perf_counter() - started


def _prompt_embeddings(pipe, prompt: str) -> torch.Tensor:
    tokenizer = pipe.tokenizer
    ids = tokenizer(
        prompt,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0]


def _autocast(device: torch.device, dtype: torch.dtype, cfg: TrainConfig):
    if cfg.mixed_precision == "auto" and device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        # No weight-cast cache: CUDA graph capture requires it off, and each step is a new region anyway.
        return torch.autocast("cuda", dtype=dtype, cache_enabled=False)
    return contextlib.nullcontext()


class _UNetStep(torch.nn.Module):
    """noise prediction as a plain tensor function (what CUDA graph capture needs)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.unet(noisy, t, emb, return_dict=False)[0]


def _unet_forward(unet, cfg: TrainConfig, device: torch.device, sample: tuple[torch.Tensor, ...]):
    """The UNet call the loop uses: CUDA-graphed on CUDA when possible, else eager.

    The graph holds the UNet's weights and the training adapter by address, so it lives only for this
    training run; interactive jobs that run in between use the UNet itself, never the graph.
    """
    step = _UNetStep(unet)
    if not (cfg.cuda_graphs and device.type == "cuda" and not cfg.train_text_encoder):
        return step
    try:
        with _autocast(device, unet.dtype, cfg):
            graphed = torch.cuda.make_graphed_callables(
                step, sample, num_warmup_iters=3, allow_unused_input=True
            )
        log.info("training step captured as CUDA graphs")
        return graphed
    except Exception as error:  # an op that cannot be captured: correct, just slower
        log.warning("CUDA graph capture failed (%s: %s); training eagerly", type(error).__name__, error)
        torch.cuda.synchronize(device)
        return _UNetStep(unet)


def train_lora(
    models,
    photos: list[Image.Image],
    cfg: TrainConfig,
    *,
    out: Path,
    class_cache: Path,
    progress: Callable[[TrainProgress], bool | None] | None = None,
    should_yield: Callable[[], bool] | None = None,
    yield_now: Callable[[], object] | None = None,
) -> TrainResult:
    """Train a personal LoRA from 512×512 face crops and write it to `out` (diffusers format)."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    cfg = cfg.resolved(models.resolution)
    cfg.validate()
    if not photos:
        raise ValueError("no photos to train on")
    started = time.perf_counter()
    pipe = models.txt2img
    unet, text_encoder, vae = adapters.unwrap(pipe.unet), pipe.text_encoder, pipe.vae
    device, dtype, res = models.device, models.dtype, cfg.resolution
    trained = [unet, text_encoder] if cfg.train_text_encoder else [unet]
    params: list[torch.nn.Parameter] = []
    gate = _Gate(progress, should_yield, yield_now, lambda: adapters.paused(trained, params))
    optimizer = None
    try:
        # 1. class images: generated once per (base model, class, resolution), shared by every user
        class_pool, generated = None, 0
        if cfg.with_prior:
            folder = class_dir(class_cache, models.base_id, cfg.cls, res)

            def between_batches(done: int, total: int) -> None:
                gate.report(TrainProgress("class_images", done, total, CLASS_PHASE * done / total, None))
                gate.maybe_yield()

            images = ensure_class_images(
                pipe,
                folder,
                prompt=cfg.class_prompt,
                count=cfg.num_class_images,
                resolution=res,
                steps=cfg.class_image_steps,
                seed=cfg.seed,
                batch_size=8 if device.type == "cuda" else 4,
                between_batches=between_batches,
            )
            generated = images.generated
            class_pool = class_latents(vae, images.paths, res, folder)
        start_fraction = CLASS_PHASE if generated else 0.02

        # 2. everything frozen is computed once
        instance_pool = encode_images(vae, photos, res)
        batches = DreamBoothBatches(
            instance_pool, class_pool, batch_size=cfg.batch_size, flip_p=cfg.flip_p, seed=cfg.seed
        )
        with torch.no_grad():
            frozen_embeddings = {
                p: _prompt_embeddings(pipe, p) for p in (cfg.instance_prompt, cfg.class_prompt)
            }

        # 3. the training adapter(s) on the resident models, fp32 LoRA weights over the half-precision base
        torch.manual_seed(cfg.seed)
        params = adapters.attach(unet, rank=cfg.rank, alpha=cfg.lora_alpha, targets=cfg.unet_targets)
        groups = [{"params": params, "lr": cfg.lr}]
        if cfg.train_text_encoder:
            te_params = adapters.attach(
                text_encoder, rank=cfg.rank, alpha=cfg.lora_alpha, targets=cfg.text_encoder_targets
            )
            groups.append({"params": te_params, "lr": cfg.text_encoder_lr})
            params = params + te_params
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        for model in trained:
            model.train()
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, fused=device.type == "cuda")
        lr_schedule = get_scheduler(
            cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps
        )
        noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)
        scaler = torch.amp.GradScaler(
            "cuda", enabled=device.type == "cuda" and dtype == torch.float16 and cfg.mixed_precision == "auto"
        )
        noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        per_step = cfg.batch_size * (2 if class_pool is not None else 1)
        latent_side = res // 8
        sample = (
            torch.randn(per_step, 4, latent_side, latent_side, device=device, dtype=unet.dtype),
            torch.randint(0, 1000, (per_step,), device=device),
            torch.randn(
                per_step, *frozen_embeddings[cfg.instance_prompt].shape[1:], device=device, dtype=unet.dtype
            ),
        )
        forward = _unet_forward(unet, cfg, device, sample)
        optimizer.zero_grad(set_to_none=True)  # graph warm-up ran backward passes on the sample

        # 4. the loop
        loop_started = time.perf_counter()
        rate = StepRate()
        loss = torch.tensor(math.nan)
        for step in range(cfg.steps):
            gate.maybe_yield()
            loss = _train_step(
                pipe,
                forward,
                batches,
                frozen_embeddings,
                cfg,
                noise_schedule,
                noise_gen,
                optimizer,
                lr_schedule,
                scaler,
                params,
            )
            done = step + 1
            if gate.due(force=done == cfg.steps):
                rate.update(done, time.perf_counter() - loop_started - gate.yielded_s)
                eta = rate.eta_s(cfg.steps - done)
                fraction = start_fraction + (1 - start_fraction) * done / cfg.steps
                event = TrainProgress("training", done, cfg.steps, fraction, eta, float(loss))
                gate.report(event, force=done == cfg.steps)
        loss_value = float(loss)  # waits for the GPU: the loop's time is measured after it
        train_seconds = time.perf_counter() - loop_started - gate.yielded_s
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"training diverged (loss {loss_value})")

        # 5. save in diffusers' format with our metadata
        unet_layers = convert_state_dict_to_diffusers(
            get_peft_model_state_dict(unet, adapter_name=adapters.TRAIN_ADAPTER)
        )
        te_layers = None
        if cfg.train_text_encoder:
            te_layers = convert_state_dict_to_diffusers(
                get_peft_model_state_dict(text_encoder, adapter_name=adapters.TRAIN_ADAPTER)
            )
        save_lora(
            out,
            unet_layers=unet_layers,
            text_encoder_layers=te_layers,
            base_model=models.base_id,
            rank=cfg.rank,
            alpha=cfg.lora_alpha,
            steps=cfg.steps,
            token=cfg.token,
            cls=cfg.cls,
            unet_targets=cfg.unet_targets,
            text_encoder_targets=cfg.text_encoder_targets,
            extra={"resolution": res, "seed": cfg.seed, "lr": cfg.lr},
        )
        return TrainResult(
            path=Path(out),
            steps=cfg.steps,
            seconds=time.perf_counter() - started,
            train_seconds=train_seconds,
            steps_per_s=cfg.steps / train_seconds if train_seconds > 0 else math.inf,
            class_images_generated=generated,
            yielded=gate.yielded,
            yielded_seconds=gate.yielded_s,
            loss=loss_value,
            config=cfg,
        )
    finally:
        if cfg.gradient_checkpointing:
            unet.disable_gradient_checkpointing()
        for model in (unet, text_encoder):
            adapters.detach(model)
        del optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _train_step(
    pipe, forward, batches, embeddings, cfg, noise_schedule, noise_gen, optimizer, lr_schedule, scaler, params
) -> torch.Tensor:
    instance, prior = batches.next()
    latents = instance if prior is None else torch.cat([instance, prior])
    noise = torch.randn(latents.shape, generator=noise_gen, device=latents.device)
    t = torch.randint(
        0,
        noise_schedule.config.num_train_timesteps,
        (latents.shape[0],),
        generator=noise_gen,
        device=latents.device,
    )
    noisy = noise_schedule.add_noise(latents, noise, t)
    if noise_schedule.config.prediction_type == "v_prediction":
        target = noise_schedule.get_velocity(latents, noise, t)
    else:
        target = noise
    n = instance.shape[0]
    dtype = pipe.unet.dtype  # the frozen base's (half precision on CUDA)
    with _autocast(latents.device, dtype, cfg):
        if cfg.train_text_encoder:
            instance_emb = _prompt_embeddings(pipe, cfg.instance_prompt)
            class_emb = _prompt_embeddings(pipe, cfg.class_prompt)
        else:
            instance_emb, class_emb = embeddings[cfg.instance_prompt], embeddings[cfg.class_prompt]
        emb = instance_emb.expand(n, -1, -1)
        if prior is not None:
            emb = torch.cat([emb, class_emb.expand(prior.shape[0], -1, -1)])
        pred = forward(noisy.to(dtype), t, emb.to(dtype))
    pred, target = pred.float(), target.float()
    loss = F.mse_loss(pred[:n], target[:n])
    if prior is not None:
        loss = loss + cfg.prior_loss_weight * F.mse_loss(pred[n:], target[n:])
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    lr_schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()  # no .item(): the CPU queues the next step while the GPU works
