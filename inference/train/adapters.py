"""The training adapter's life inside the resident pipeline: attach, pause, resume, detach.

The UNet (and text encoder) are the ones serving interactive jobs, so the rule is: outside a training
step, the training adapter is disabled. Portraits enable exactly their user's adapter for one call and
disable LoRA again (inference.portrait); stylize jobs never touch adapters and so see the base model.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from peft import LoraConfig
from peft.tuners.tuners_utils import BaseTunerLayer

TRAIN_ADAPTER = "artbooth_training"  # not "train": a LoRA adapter name becomes a module attribute


def unwrap(module):
    """The module under torch.compile's wrapper (ARTBOOTH_COMPILE=1), where adapters live."""
    return getattr(module, "_orig_mod", module)


def set_lora_enabled(model: torch.nn.Module, enabled: bool) -> None:
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.enable_adapters(enabled)


def activate(model: torch.nn.Module, name: str, scale: float | None = None) -> None:
    """Make `name` the only active adapter, enabled; peft also sets requires_grad on its weights only."""
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.set_adapter(name)
            if scale is not None and name in getattr(module, "scaling", {}):
                module.set_scale(name, scale)
            module.enable_adapters(True)


def activate_stack(model: torch.nn.Module, scales: dict[str, float]) -> None:
    """Several adapters on at once (a user's LoRA and fast mode's distillation LoRA), each at its scale."""
    names = list(scales)
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.set_adapter(names)  # a layer that lacks one of them skips it in its forward
            for name, scale in scales.items():
                if name in getattr(module, "scaling", {}):
                    module.set_scale(name, scale)
            module.enable_adapters(True)


def has_adapter(model: torch.nn.Module, name: str) -> bool:
    return name in (getattr(model, "peft_config", None) or {})


def attach(
    model: torch.nn.Module, *, rank: int, alpha: int, targets: tuple[str, ...]
) -> list[torch.nn.Parameter]:
    """Add a fresh training adapter to a frozen model; returns its (fp32) trainable parameters."""
    detach(model)  # a crashed earlier run's leftover, if any
    model.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))
    model.add_adapter(config, adapter_name=TRAIN_ADAPTER)
    activate(model, TRAIN_ADAPTER)
    params = [p for n, p in model.named_parameters() if f".{TRAIN_ADAPTER}." in n]
    for p in params:
        # fp32 master weights for the LoRA only; the frozen base stays in half precision
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def detach(model: torch.nn.Module) -> None:
    """Remove the training adapter, leaving other adapters (portrait cache) in place, LoRA disabled."""
    if has_adapter(model, TRAIN_ADAPTER):
        if hasattr(model, "delete_adapters"):  # diffusers models
            model.delete_adapters(TRAIN_ADAPTER)
        else:  # transformers models
            model.delete_adapter(TRAIN_ADAPTER)
    set_lora_enabled(model, False)
    _unwrap_if_no_adapters(model)
    model.eval()


def _unwrap_if_no_adapters(model: torch.nn.Module) -> None:
    """With no adapter left, put the plain layers back (peft leaves empty wrappers behind), so the
    module tree is again the one the worker compiled and graphed at start (inference.graphs)."""
    if getattr(model, "peft_config", None):  # portrait adapters still loaded: they need the wrappers
        return
    from diffusers.utils.peft_utils import recurse_remove_peft_layers

    recurse_remove_peft_layers(model)


@contextmanager
def paused(models: list[torch.nn.Module], params: list[torch.nn.Parameter]):
    """While interactive jobs run: eval mode, every LoRA disabled; afterwards our adapter is back."""
    for model in models:
        model.eval()
        set_lora_enabled(model, False)
    try:
        yield
    finally:
        for model in models:
            activate(model, TRAIN_ADAPTER)
            model.train()
        for p in params:
            p.requires_grad_(True)
