"""A user's LoRA fused into the resident weights for one portrait job, then unfused.

Why not peft adapters (portrait.AdapterCache): an enabled peft layer runs eagerly beside its base layer,
so a portrait could use neither the compiled UNet nor its CUDA graphs (four portraits took 1.78 s on an
H200). Fusing W += scale * alpha/r * up @ down in place keeps every weight's address, so the graphs and
kernels prepared at start run the user's weights. The touched weights' base values are kept once (the
attention projections, about 0.1 GB in fp16) and copied back after the job: the next job sees the base
model bit for bit, and a switch between users costs two copies of those weights, not a reload.

Fast portraits fuse the user's LoRA into fast mode's own UNet (inference/fast.py: the distillation LoRA
already fused in) and the shared text encoder: `lora_fuser(models, unet)`. Its base copies are taken from
that UNet's weights as they stand, the distillation fused in, so the job paints W_fast + scale * dW_user and
restores W_fast; the text encoder's copies are shared with the resident UNet's fuser (same weights).
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors import safe_open

from inference.train import adapters
from jobs.errors import BAD_LORA, JobError

_KEY = re.compile(
    r"^(?P<component>unet|text_encoder)\.(?P<module>.+?)\.(?:lora\.|lora_linear_layer\.)?(?P<part>down|up|lora_A|lora_B)\.weight$"
)
_DOWN = ("down", "lora_A")


class LoraFuser:
    """Fuses LoRA files into one pipeline's UNet and text encoder; keeps the last few files on the GPU.

    `unet`: another UNet than the pipe's own (fast mode's), beside the pipe's text encoder. `base`: the
    base-copy store of the pipe's other fuser, so the weights they share (the text encoder's) are kept once.
    """

    def __init__(self, pipe, capacity: int = 4, unet=None, base: dict | None = None):
        self.pipe, self.capacity, self.unet = pipe, capacity, unet
        self.loaded: OrderedDict[tuple, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = OrderedDict()
        # id(weight) -> (weight, base copy); holding the weight keeps its id from being reused
        self.base: dict[int, tuple[torch.Tensor, torch.Tensor]] = {} if base is None else base

    def _components(self) -> dict[str, torch.nn.Module]:
        unet = self.pipe.unet if self.unet is None else self.unet
        return {"unet": adapters.unwrap(unet), "text_encoder": self.pipe.text_encoder}

    def _load(self, path: Path) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """[(weight, up, down * alpha/r)] for every layer the file adapts; cached by (path, size, mtime)."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return self.loaded[key]
        pairs: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                match = _KEY.match(name)
                if match:
                    part = "down" if match["part"] in _DOWN else "up"
                    pairs.setdefault((match["component"], match["module"]), {})[part] = f.get_tensor(name)
        rank = int(meta.get("artbooth.rank") or 0)
        alpha = float(meta.get("artbooth.alpha") or rank or 1)
        components = self._components()
        entries = []
        for (component, module_name), pair in pairs.items():
            try:
                module = components[component].get_submodule(module_name)
            except AttributeError as exc:
                raise JobError(
                    BAD_LORA, f"{path.name} adapts {module_name}, which the base model lacks"
                ) from exc
            weight = getattr(module, "base_layer", module).weight
            down, up = pair["down"], pair["up"]
            factor = alpha / (rank or down.shape[0])
            entries.append(
                (weight, up.to(weight.device, torch.float32), down.to(weight.device, torch.float32) * factor)
            )
        while len(self.loaded) >= self.capacity:
            self.loaded.popitem(last=False)
        self.loaded[key] = entries
        return entries

    @contextlib.contextmanager
    def fused(self, path: Path, scale: float):
        """The file's LoRA at `scale` fused into the weights for the block; the base restored after it."""
        entries = self._load(Path(path))
        # inference mode, not no_grad: a UNet built inside an album's inference_mode (fast mode's) holds
        # inference tensors, which take in-place writes only there (ordinary weights take them too)
        try:
            with torch.inference_mode():
                for weight, up, down in entries:
                    if id(weight) not in self.base:  # the first job to touch it: its base value, kept
                        self.base[id(weight)] = (weight, weight.detach().clone())
                    base = self.base[id(weight)][1]
                    delta = (up.flatten(1) @ down.flatten(1)).view(weight.shape) * scale
                    weight.copy_((base.float() + delta).to(weight.dtype))
            yield
        finally:
            with torch.inference_mode():
                for weight, _, _ in entries:
                    kept = self.base.get(id(weight))  # None: a failure before this weight was reached
                    if kept is not None:
                        weight.copy_(kept[1])


_fusers: dict[tuple[int, int | None], LoraFuser] = {}


def lora_fuser(models, unet=None) -> LoraFuser:
    """The fuser that belongs to this resident pipeline; `unet`: the one for another resident UNet of it
    (fast mode's) with the pipeline's text encoder."""
    pipe = models.txt2img
    key = (id(pipe), None if unet is None else id(unet))
    fuser = _fusers.get(key)
    if fuser is None or fuser.pipe is not pipe or fuser.unet is not unet:
        base = None if unet is None else lora_fuser(models).base
        fuser = _fusers[key] = LoraFuser(pipe, unet=unet, base=base)
    return fuser
