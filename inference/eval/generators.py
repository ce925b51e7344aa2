"""The models study's generators behind one small interface: `use_scheduler(name)`, `generate(prompt, seed,
steps, guidance) -> Image`, `size`, `device`. A diffusers pipeline (SD 1.x/2.x through the bot's own
loader, SDXL through StableDiffusionXLPipeline with an optional LoRA) or BigGAN.

Under MODELS=tiny the names `tiny`, `tiny-seedN`, `sdxl:tiny+tiny-lora` and `biggan:tiny` are twins built
in code and loaded back through the same from_pretrained / load_lora_weights calls as real weights.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image

from inference.eval import biggan
from inference.eval.model_specs import ModelSpec
from inference.settings import InferenceSettings

T = TypeVar("T")
NO_SCHEDULER = "none"  # the scheduler column of a GAN's units and cell

# name -> (diffusers class, extra from_config kwargs)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}


@dataclass
class DiffusionGenerator:
    pipe: Any
    device: torch.device
    base_scheduler_config: Any = field(init=False)

    def __post_init__(self) -> None:
        self.base_scheduler_config = self.pipe.scheduler.config
        self.pipe.set_progress_bar_config(disable=True)

    @property
    def size(self) -> int:  # the model's native size: 512, 768 for SD 2.1, 1024 for SDXL
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    def use_scheduler(self, name: str) -> None:
        import diffusers

        cls_name, kwargs = SCHEDULERS[name]
        self.pipe.scheduler = getattr(diffusers, cls_name).from_config(self.base_scheduler_config, **kwargs)

    def generate(self, prompt: str, seed: int, steps: int, guidance: float) -> Image.Image:
        return self.pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            height=self.size,
            width=self.size,
            generator=torch.Generator("cpu").manual_seed(seed),  # CPU noise: the same image on any device
        ).images[0]


@dataclass
class GanGenerator:
    model: biggan.BigGAN
    device: torch.device
    truncation: float
    classes: dict[str, int]  # prompt -> ImageNet class index (imagenet.nearest_classes)

    @property
    def size(self) -> int:
        return self.model.config.output_dim

    def use_scheduler(self, name: str) -> None:
        assert name == NO_SCHEDULER, name

    def generate(self, prompt: str, seed: int, steps: int, guidance: float) -> Image.Image:
        return biggan.generate(self.model, self.classes[prompt], seed, self.truncation)


def load_generator(
    settings: InferenceSettings, spec: ModelSpec, *, truncation: float, classes: dict[str, int]
) -> DiffusionGenerator | GanGenerator:
    from inference.models import load_base, pick_device

    device = pick_device(settings.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if spec.family == "biggan":
        path = biggan_path(settings, spec.base)
        model = _explained("BigGAN weights", str(path), lambda: biggan.BigGAN.from_pretrained(path))
        return GanGenerator(model.to(device), device, truncation, classes)  # fp32: 53 M parameters
    if spec.family == "sdxl":
        return DiffusionGenerator(_load_sdxl(settings, spec, device, dtype), device)
    local = replace(settings, overrides={**settings.overrides, "base": sd_path(settings, spec.base)})
    return DiffusionGenerator(load_base(local, device, dtype)[0], device)


def _load_sdxl(settings: InferenceSettings, spec: ModelSpec, device: torch.device, dtype: torch.dtype):
    from diffusers import StableDiffusionXLPipeline

    base, lora = spec.base, spec.lora
    if settings.models == "tiny" and (base == "tiny" or lora == "tiny-lora"):
        from inference.tiny import ensure_sdxl_twin

        twin_base, twin_lora = ensure_sdxl_twin(_models_dir(settings))
        base = str(twin_base) if base == "tiny" else base
        lora = str(twin_lora) if lora == "tiny-lora" else lora
    pipe = _explained(
        "SDXL model", base, lambda: StableDiffusionXLPipeline.from_pretrained(base, torch_dtype=dtype)
    )
    if lora:
        source, kwargs = lora_source(lora)
        _explained("LoRA", lora, lambda: pipe.load_lora_weights(source, adapter_name="study", **kwargs))
    return pipe.to(device)


def lora_source(lora: str) -> tuple[str, dict]:
    """load_lora_weights' arguments for a LoRA: a folder or hub id (diffusers picks its one .safetensors),
    a local file, or a file in a hub repo (`owner/repo/file.safetensors`, for repos holding several)."""
    path = Path(lora).expanduser()
    if path.is_file():
        return str(path.parent), {"weight_name": path.name}
    if path.exists():
        return str(path), {}
    if lora.endswith(".safetensors") and lora.count("/") >= 2:
        owner, repo, weight_name = lora.split("/", 2)
        return f"{owner}/{repo}", {"weight_name": weight_name}
    return lora, {}


def sd_path(settings: InferenceSettings, name: str) -> str:
    """Hub id or directory of an SD checkpoint; under MODELS=tiny, 'tiny' and 'tiny-seedN' are built twins."""
    from inference.eval.metric_models import build_once
    from inference.models import resolve

    if settings.models == "tiny" and name == "tiny":
        return resolve(settings, "base")
    if settings.models == "tiny" and name.startswith("tiny-seed"):
        seed = int(name.removeprefix("tiny-seed"))
        target = _models_dir(settings) / "tiny" / f"base-seed{seed}"
        build_once(target, lambda out: _reseeded_base(resolve(settings, "base"), seed, out))
        return str(target)
    return name


def _reseeded_base(source: str, seed: int, out: Path) -> None:
    """The tiny base with another UNet seed: a second, different model for the tiny grid."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    pipe = StableDiffusionPipeline.from_pretrained(source, safety_checker=None, requires_safety_checker=False)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(pipe.unet.config)
    StableDiffusionPipeline(**{**pipe.components, "unet": unet}).save_pretrained(out)


def biggan_path(settings: InferenceSettings, name: str) -> Path:
    """'tiny' (MODELS=tiny) is the built twin; a published name is downloaded once under DATA_DIR/models/biggan/;
    anything else is a folder holding config.json + pytorch_model.bin."""
    from inference.tiny import build_atomically, ensure_biggan_twin

    if settings.models == "tiny" and name == "tiny":
        return ensure_biggan_twin(_models_dir(settings))
    if name in biggan.PUBLISHED:
        target = _models_dir(settings) / "biggan" / name
        return build_atomically(target, name, lambda tmp: _download_published(name, tmp), role="biggan")
    return Path(name).expanduser()


def _download_published(name: str, out: Path) -> None:
    for file in (biggan.CONFIG_NAME, biggan.WEIGHTS_NAME):
        url = biggan.PUBLISHED_URL.format(name=name, file=file)
        _explained(
            "BigGAN weights", url, lambda url=url, file=file: urllib.request.urlretrieve(url, out / file)
        )


def _models_dir(settings: InferenceSettings) -> Path:
    return Path(settings.data_dir) / "models"


def _explained(what: str, ident: str, load: Callable[[], T]) -> T:
    """Weights that are neither cached nor reachable become one line that says what to do, not a traceback."""
    from huggingface_hub.errors import HFValidationError

    from jobs.errors import MODEL_MISSING, JobError

    try:
        return load()
    except (OSError, HFValidationError) as exc:  # URLError is an OSError too
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise JobError(
            MODEL_MISSING,
            f"{what} {ident!r} is not available ({first}): download it on a host with network "
            "(docs/evaluation.md says how) and pass its local folder",
        ) from exc
