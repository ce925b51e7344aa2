"""The worker's settings, from the environment (and `.env`). Plain dataclass: no pydantic on GPU hosts.

What the bot reads too (DATA_DIR, the database, MODELS, DEVICE) comes from contract/settings.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from contract.settings import SharedSettings, load_dotenv


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class InferenceSettings(SharedSettings):
    overrides: dict[str, str] = field(default_factory=dict)  # role -> hub id or local dir
    # GPU speed switches (docs/benchmarks.md says what each measured)
    cuda_graphs: bool = True  # ARTBOOTH_CUDA_GRAPHS: replay the UNet and BLIP decoding as CUDA graphs
    # ARTBOOTH_COMPILE: torch.compile the UNet's batch-8 shape and the VAE decoder's two-picture shape of each
    # bucket, at the worker's start (inference/graphs.py). On an H200: +33% albums/hour, peak 7.6 instead of
    # 10.8 GiB reserved, but the worker starts in 88 s with a warm cache and 8.2 min on a new machine
    # (against 35 s): off by default, on for a long-running GPU worker (docs/benchmarks.md).
    compile: bool = False
    channels_last: bool = False  # ARTBOOTH_CHANNELS_LAST (with ARTBOOTH_COMPILE only; eager ran slower)
    # issue 9: the worker at the GPU's speed (inference/graphs.py, inference/batch_runner.py)
    buckets: bool = True  # ARTBOOTH_BUCKETS: fit photos to five shape buckets (inference.buckets)
    # Batching across users is opt-in: in the H200 drain of four aspects it never formed a batch, while its
    # extra shapes doubled the start's warm-up and raised the peak reserved memory (docs/benchmarks.md).
    batch_photos: int = 1  # ARTBOOTH_BATCH_PHOTOS: photos of one bucket painted in one UNet batch
    # ARTBOOTH_CLAIM_BATCH: stylize jobs claimed at once (those of other buckets go back)
    claim_batch: int = 1
    # Fast albums are batched across users by default: they come in bursts (fast mode switches on when the
    # queue is long), and at three UNet steps the caption and the fixed costs weigh as much as the steps.
    # ARTBOOTH_FAST_BATCH_PHOTOS photos of one bucket per batch, found among ARTBOOTH_FAST_CLAIM_BATCH claimed
    # at once (four phone aspects: about a quarter share a bucket).
    fast_batch_photos: int = 2
    fast_claim_batch: int = 8
    # ARTBOOTH_DECODE_PROCESSES: processes decoding the next photos beside the painting thread (inference/
    # batch_runner.py); None: 2 on CUDA, 0 (the look-ahead thread decodes) on CPU, where the GIL is no
    # bottleneck and a spawned process would cost a test more than it saves
    decode_processes: int | None = None
    warmup: bool = True  # ARTBOOTH_WARMUP: prepare every bucket's shapes when the worker starts (CUDA)
    pipeline: bool = True  # ARTBOOTH_PIPELINE: decode the next photos and write pictures on threads
    fuse_lora: bool = True  # ARTBOOTH_FUSE_LORA: portraits fuse the user's LoRA into the graphed UNets
    # ARTBOOTH_FAST_TINY_VAE: fast mode encodes and decodes with the tiny autoencoder (the fast_vae role, TAESD);
    # off: with the base model's VAE (inference/fast.py says what each costs)
    fast_tiny_vae: bool = True
    compile_cache: str = ""  # ARTBOOTH_COMPILE_CACHE: default DATA_DIR/compile-cache

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> InferenceSettings:
        if env is None:
            load_dotenv()
            env = dict(os.environ)
        # MODEL_BASE=..., MODEL_CAPTION=..., MODEL_VQA=..., MODEL_CONTROL=..., MODEL_FAST_VAE=...: per-role overrides
        overrides = {k[len("MODEL_") :].lower(): v for k, v in env.items() if k.startswith("MODEL_") and v}
        return cls(
            **cls.shared_from_env(env),  # type: ignore[arg-type]
            overrides=overrides,
            cuda_graphs=_flag(env, "ARTBOOTH_CUDA_GRAPHS", True),
            compile=_flag(env, "ARTBOOTH_COMPILE", False),
            channels_last=_flag(env, "ARTBOOTH_CHANNELS_LAST", False),
            buckets=_flag(env, "ARTBOOTH_BUCKETS", True),
            batch_photos=max(1, int(env.get("ARTBOOTH_BATCH_PHOTOS") or 1)),
            claim_batch=max(1, int(env.get("ARTBOOTH_CLAIM_BATCH") or 1)),
            fast_batch_photos=max(1, int(env.get("ARTBOOTH_FAST_BATCH_PHOTOS") or 2)),
            fast_claim_batch=max(1, int(env.get("ARTBOOTH_FAST_CLAIM_BATCH") or 8)),
            decode_processes=None
            if env.get("ARTBOOTH_DECODE_PROCESSES") in (None, "")
            else max(0, int(env["ARTBOOTH_DECODE_PROCESSES"])),
            warmup=_flag(env, "ARTBOOTH_WARMUP", True),
            pipeline=_flag(env, "ARTBOOTH_PIPELINE", True),
            fuse_lora=_flag(env, "ARTBOOTH_FUSE_LORA", True),
            fast_tiny_vae=_flag(env, "ARTBOOTH_FAST_TINY_VAE", True),
            compile_cache=env.get("ARTBOOTH_COMPILE_CACHE", ""),
        )

    @property
    def compile_cache_dir(self):
        """Where torch.compile's inductor and triton caches live: kept across restarts and crashes."""
        from pathlib import Path

        return Path(self.compile_cache) if self.compile_cache else Path(self.data_dir) / "compile-cache"

    @classmethod
    def for_process(cls, device: str | None = None) -> InferenceSettings:
        """A process's settings (the worker, the bench, the tools): from the environment, `device` over
        DEVICE, and the compile caches pointed before anything imports diffusers."""
        settings = cls.from_env()
        if device:
            settings.device = device
        settings.point_compile_caches()
        return settings

    def point_compile_caches(self) -> None:
        """With compile on, torch's inductor and triton caches go under compile_cache_dir (unless the
        environment names them). Only before diffusers or torch._inductor is imported: torch settles on its
        cache directory then, and a later setting is ignored (on the H200 host the kernels went to
        /tmp/torchinductor_root, which a new machine or container does not keep)."""
        if self.compile:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(self.compile_cache_dir / "inductor"))
            os.environ.setdefault("TRITON_CACHE_DIR", str(self.compile_cache_dir / "triton"))
