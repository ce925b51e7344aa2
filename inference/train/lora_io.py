"""The LoRA file: diffusers' key format (`unet.….lora.down.weight`), our metadata in the safetensors header.

`pipe.load_lora_weights(path)` accepts it as is. The header also carries diffusers' own
`lora_adapter_metadata` (rank, alpha, targets), so a loader that reads it rebuilds the exact LoraConfig.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from contract.kinds import DEFAULT_TOKEN
from jobs.errors import BAD_LORA, JobError

META_PREFIX = "artbooth."
DIFFUSERS_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY


@dataclass(frozen=True)
class LoraInfo:
    path: Path
    base_model: str
    rank: int
    steps: int
    token: str
    cls: str
    created: float
    text_encoder: bool


def _adapter_metadata(prefix: str, rank: int, alpha: int, targets: tuple[str, ...]) -> dict:
    return {f"{prefix}.r": rank, f"{prefix}.lora_alpha": alpha, f"{prefix}.target_modules": list(targets)}


def save_lora(
    path: Path,
    *,
    unet_layers: dict[str, torch.Tensor],
    text_encoder_layers: dict[str, torch.Tensor] | None,
    base_model: str,
    rank: int,
    alpha: int,
    steps: int,
    token: str,
    cls: str,
    unet_targets: tuple[str, ...],
    text_encoder_targets: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
) -> Path:
    """Write atomically (temp file, then rename), so retraining replaces the old LoRA in one step."""
    tensors = {f"unet.{k}": v.detach().to("cpu", torch.float16).contiguous() for k, v in unet_layers.items()}
    adapter_meta = _adapter_metadata("unet", rank, alpha, unet_targets)
    if text_encoder_layers:
        tensors.update(
            {
                f"text_encoder.{k}": v.detach().to("cpu", torch.float16).contiguous()
                for k, v in text_encoder_layers.items()
            }
        )
        adapter_meta.update(_adapter_metadata("text_encoder", rank, alpha, text_encoder_targets))
    metadata = {
        "format": "pt",
        DIFFUSERS_METADATA_KEY: json.dumps(adapter_meta, sort_keys=True),
        f"{META_PREFIX}base_model": base_model,
        f"{META_PREFIX}rank": str(rank),
        f"{META_PREFIX}alpha": str(alpha),
        f"{META_PREFIX}steps": str(steps),
        f"{META_PREFIX}token": token,
        f"{META_PREFIX}class": cls,
        f"{META_PREFIX}created": f"{time.time():.3f}",
        f"{META_PREFIX}text_encoder": "1" if text_encoder_layers else "0",
        **{f"{META_PREFIX}{k}": str(v) for k, v in (extra or {}).items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_lora_info(path: Path) -> LoraInfo:
    """Our metadata from the header, checking the file is a readable LoRA. Raises JobError(BAD_LORA)."""
    path = Path(path)
    if not path.is_file():
        raise JobError(BAD_LORA, f"LoRA file {path.name} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
    except Exception as exc:  # safetensors raises its own error types for torn/foreign files
        raise JobError(BAD_LORA, f"LoRA file {path.name} is not a readable safetensors file") from exc
    if not any(".lora" in k for k in keys):
        raise JobError(BAD_LORA, f"{path.name} holds no LoRA weights")
    if f"{META_PREFIX}base_model" not in meta:
        raise JobError(BAD_LORA, f"{path.name} was not made by artbooth (no base-model metadata)")
    try:
        return LoraInfo(
            path=path,
            base_model=meta[f"{META_PREFIX}base_model"],
            rank=int(meta.get(f"{META_PREFIX}rank", 0)),
            steps=int(meta.get(f"{META_PREFIX}steps", 0)),
            token=meta.get(f"{META_PREFIX}token", DEFAULT_TOKEN),
            cls=meta.get(f"{META_PREFIX}class", "person"),
            created=float(meta.get(f"{META_PREFIX}created", 0)),
            text_encoder=meta.get(f"{META_PREFIX}text_encoder") == "1",
        )
    except ValueError as exc:
        raise JobError(BAD_LORA, f"{path.name} has unreadable metadata") from exc


def check_lora_for(path: Path, base_model: str) -> LoraInfo:
    """read_lora_info, plus: was it trained on the base model that is loaded now?"""
    info = read_lora_info(path)
    if info.base_model != base_model:
        raise JobError(
            BAD_LORA,
            f"this LoRA was trained for {info.base_model}, but the loaded base model is {base_model}: retrain it",
        )
    return info
