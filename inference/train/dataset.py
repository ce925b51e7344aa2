"""Training data as VAE latents, encoded once: the instance crops and the class images, each also flipped.

The VAE and (unless it is trained) the text encoder are frozen, so encoding every step would only burn
time. We keep each latent distribution's mean and std and draw a fresh sample per step, as the VAE would.
Class-image latents are cached beside the class images (they depend on the same base model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

LATENT_CACHE = "latents.pt"


def to_pixels(image: Image.Image, resolution: int) -> torch.Tensor:
    """RGB, centre-cropped square, resized, as a (3, R, R) tensor in [-1, 1]."""
    image = ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


@dataclass
class LatentPool:
    """(N, 2, C, h, w) means and stds: index 1 on the second axis is the horizontally flipped image."""

    mean: torch.Tensor
    std: torch.Tensor

    def __len__(self) -> int:
        return self.mean.shape[0]

    def sample(self, indices: torch.Tensor, flips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        indices, flips = _to_device(indices, self.mean.device), _to_device(flips.long(), self.mean.device)
        mean = self.mean[indices, flips]
        std = self.std[indices, flips]
        noise = torch.randn(mean.shape, generator=generator, device=generator.device).to(
            mean.device, mean.dtype
        )
        return mean + std * noise

    def to(self, device: torch.device, dtype: torch.dtype) -> LatentPool:
        return LatentPool(self.mean.to(device, dtype), self.std.to(device, dtype))


def _to_device(index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CPU index tensors to the GPU without a host sync (a pageable copy would wait for the GPU)."""
    if device.type != "cuda":
        return index
    return index.pin_memory().to(device, non_blocking=True)


@torch.no_grad()
def encode_images(vae, images: list[Image.Image], resolution: int, *, batch_size: int = 8) -> LatentPool:
    """Scaled latent distributions of each image and its mirror, in fp32 on the VAE's device."""
    scale = vae.config.scaling_factor
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        pixels = torch.stack([to_pixels(im, resolution) for im in images[start : start + batch_size]])
        pixels = torch.stack([pixels, pixels.flip(-1)], dim=1).flatten(0, 1)  # image, mirror, image, ...
        dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
        means.append((dist.mean * scale).float())
        stds.append((dist.std * scale).float())
    mean, std = torch.cat(means), torch.cat(stds)
    return LatentPool(mean.unflatten(0, (-1, 2)), std.unflatten(0, (-1, 2)))


def class_latents(vae, paths: list[Path], resolution: int, folder: Path) -> LatentPool:
    """Latents of the class images, from `folder/latents.pt` when it holds these images."""
    cache = folder / LATENT_CACHE
    key = [p.name for p in paths]
    if cache.is_file():
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
            if saved.get("key") == key and saved.get("resolution") == resolution:
                return LatentPool(saved["mean"].float(), saved["std"].float()).to(vae.device, torch.float32)
        except Exception:  # a torn or foreign file: recompute it
            pass
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    pool = encode_images(vae, images, resolution)
    saved = {
        "key": key,
        "resolution": resolution,
        "mean": pool.mean.half().cpu(),
        "std": pool.std.half().cpu(),
    }
    tmp = cache.with_name(f".{LATENT_CACHE}.{os.getpid()}.tmp")
    torch.save(saved, tmp)
    os.replace(tmp, cache)
    # Train on what the cache holds (fp16-rounded), so a cold run and a warm run give the same LoRA.
    return LatentPool(saved["mean"].float(), saved["std"].float()).to(vae.device, torch.float32)


class DreamBoothBatches:
    """Endless batches: instances in a reshuffled order each epoch, random class images, random flips."""

    def __init__(
        self, instances: LatentPool, classes: LatentPool | None, *, batch_size: int, flip_p: float, seed: int
    ):
        self.instances, self.classes = instances, classes
        self.batch_size, self.flip_p = batch_size, flip_p
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.noise_generator = torch.Generator(device=instances.mean.device).manual_seed(seed + 1)
        self._order: list[int] = []

    def _next_instances(self) -> torch.Tensor:
        picked = []
        for _ in range(self.batch_size):
            if not self._order:
                self._order = torch.randperm(len(self.instances), generator=self.generator).tolist()
            picked.append(self._order.pop())
        return torch.tensor(picked)

    def _flips(self) -> torch.Tensor:
        return torch.rand(self.batch_size, generator=self.generator) < self.flip_p

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(instance latents, class latents or None), each (batch_size, C, h, w)."""
        instance = self.instances.sample(self._next_instances(), self._flips(), self.noise_generator)
        if self.classes is None:
            return instance, None
        picked = torch.randint(len(self.classes), (self.batch_size,), generator=self.generator)
        return instance, self.classes.sample(picked, self._flips(), self.noise_generator)
