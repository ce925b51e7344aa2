"""Load every model once and keep it resident: `load_models(settings) -> ModelSet`.

The same `from_pretrained` code loads real weights (`MODELS=sd15`) and the twins that
`inference.tiny` builds (`tiny`, `sd15-random`). Missing real weights without network become one
`ModelMissing` line that says what to do, never a traceback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from inference.captioner import Captioner
from inference.presets import ROLES, ModelPreset, get_preset
from inference.settings import InferenceSettings
from jobs.errors import MODEL_MISSING, JobError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelMissing(JobError):
    """Weights for a role are neither cached nor downloadable. `str(exc)` is the one line to print."""

    def __init__(self, role: str, model_id: str, reason: str = ""):
        message = (
            f"{role} model {model_id!r} is not available{f' ({reason})' if reason else ''}: "
            f"set HF_HOME to a Hugging Face cache that has it, pre-download it with "
            f"`hf download {model_id}`, point MODEL_{role.upper()} at a local copy, "
            f"or use MODELS=tiny"
        )
        super().__init__(MODEL_MISSING, message)
        self.role = role
        self.model_id = model_id


def models_dir(settings: InferenceSettings) -> Path:
    return Path(settings.data_dir) / "models"


def resolve(settings: InferenceSettings, role: str) -> str:
    """The hub id or local directory that `from_pretrained` should load for `role`.

    An override (MODEL_<ROLE>) wins: an existing path is used as a local directory, anything else is
    taken as a hub id. Built presets are built on first use under DATA_DIR/models/<preset>/<role>/.
    """
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; roles: {', '.join(ROLES)}")
    override = settings.overrides.get(role)
    if override:
        path = Path(override).expanduser()
        if path.exists():
            return str(path.resolve())
        if override.startswith(("/", ".", "~")) or override.count("/") > 1:
            raise ModelMissing(role, override, "no such local directory")
        return override  # a hub id
    preset = get_preset(settings.models)
    if not preset.built:
        return preset.ids[role]
    if role == "fast":  # a random LoRA of the real one's shape (inference/fast.py)
        from inference.fast import ensure_lora_twin

        return str(ensure_lora_twin(preset, models_dir(settings)))
    from inference.tiny import ensure_built

    # sd15-random is ~1.5 B random parameters: initialising them on the GPU is much faster.
    device = pick_device(settings.device)
    build_device = device.type if preset.name != "tiny" and device.type == "cuda" else "cpu"
    return str(ensure_built(preset.name, role, models_dir(settings), device=build_device))


def model_id(settings: InferenceSettings, role: str) -> str:
    """What a role's weights are called in reports and LoRA metadata: its override (MODEL_<ROLE>), else the
    preset's id (for built presets a label such as artbooth/sd15-random-base)."""
    return settings.overrides.get(role) or get_preset(settings.models).ids[role]


def pick_device(name: str = "auto") -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"DEVICE={name} but CUDA is not available (torch {torch.__version__})")
    return device


def _load(role: str, model_id: str, loader: Callable[[], T]) -> T:
    """Run a from_pretrained call, turning 'not cached and no network' into ModelMissing."""
    from huggingface_hub.errors import HFValidationError

    try:
        return loader()
    except HFValidationError as exc:  # neither an existing local dir nor a valid hub id
        raise ModelMissing(role, model_id, "no such local directory or hub id") from exc
    except OSError as exc:  # LocalEntryNotFoundError, EnvironmentError "can't load ... offline", etc.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelMissing(role, model_id, short_reason(first)) from exc


def short_reason(text: str, limit: int = 160) -> str:
    """At most `limit` characters, cut between words and before a parenthesis it would leave open.

    A plain slice cut diffusers' "...not fully cached locally (Cannot find an appropriate cached snapshot
    folder for the specified revision..." into "...snapshot folder for the )" once wrapped in our own
    parentheses.
    """
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    open_at: list[int] = []
    for i, char in enumerate(cut):
        if char == "(":
            open_at.append(i)
        elif char == ")" and open_at:
            open_at.pop()
    if open_at:
        cut = cut[: open_at[0]]
    return cut.rstrip(" :;,.-") + "…"


@dataclass
class ModelSet:
    preset: ModelPreset
    device: torch.device
    dtype: torch.dtype
    base_id: str  # what LoRA metadata records as the base model
    resolution: int
    txt2img: Any  # StableDiffusionPipeline
    img2img: Any  # StableDiffusionImg2ImgPipeline over the same modules (no second copy)
    captioner: Captioner | None
    settings: InferenceSettings
    _lazy: dict[str, Any] = field(default_factory=dict, repr=False)

    def vqa(self) -> tuple[Any, Any]:
        """(BlipProcessor, BlipForQuestionAnswering), loaded on first use."""
        if "vqa" not in self._lazy:
            from transformers import BlipForQuestionAnswering, BlipProcessor

            path = resolve(self.settings, "vqa")
            processor = _load("vqa", path, lambda: BlipProcessor.from_pretrained(path))
            model = _load(
                "vqa", path, lambda: BlipForQuestionAnswering.from_pretrained(path, dtype=self.dtype)
            )
            self._lazy["vqa"] = (processor, model.to(self.device).eval())
        return self._lazy["vqa"]

    def controlnet(self) -> Any:
        """ControlNetModel for the `control` role, loaded on first use."""
        if "control" not in self._lazy:
            from diffusers import ControlNetModel

            path = resolve(self.settings, "control")
            model = _load(
                "control", path, lambda: ControlNetModel.from_pretrained(path, torch_dtype=self.dtype)
            )
            self._lazy["control"] = model.to(self.device).eval()
        return self._lazy["control"]


def _quiet_loading() -> None:
    """No per-load progress bars or dtype-kwarg deprecation noise in the worker's log."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    # diffusers 0.42 renamed torch_dtype to dtype; older ones only know torch_dtype, so keep it.
    warnings.filterwarnings("ignore", message=".*torch_dtype.*is deprecated", category=FutureWarning)


def _configure_cuda(pipe, settings: InferenceSettings) -> None:
    """Cheap CUDA speedups, and where torch.compile keeps its artefacts.

    fp16 weights and SDPA attention are the base; TF32 is free; cuDNN autotuning is off (below).
    channels_last made the eager UNet 8-20% slower on an H100 and gained nothing graphed on the H200 (29.8
    against 29.1 ms at batch 8), so it applies only with ARTBOOTH_COMPILE=1 and ARTBOOTH_CHANNELS_LAST=1.
    The compiled forwards are built lazily (inference.graphs) and prepared at the worker's start
    (inference.warmup); their caches go under DATA_DIR so a restart does not recompile.
    """
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    # No cuDNN autotuning: on the H200 it cost 2-2.5 s per new shape at the worker's start (about 40 s over
    # the buckets' UNet and VAE shapes) and bought nothing (UNet step 35.8 vs 36.0 ms, VAE decode 62.4 ms
    # both ways: scripts/gpu_probe.py, docs/benchmarks.md).
    torch.backends.cudnn.benchmark = False
    settings.point_compile_caches()  # in effect where nothing imported diffusers before (see there)
    if settings.channels_last and settings.compile:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)


def load_base(settings: InferenceSettings, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    path = resolve(settings, "base")
    txt2img = _load(
        "base",
        path,
        lambda: StableDiffusionPipeline.from_pretrained(
            path,
            torch_dtype=dtype,
            safety_checker=None,
            requires_safety_checker=False,
        ),
    )
    txt2img.scheduler = DPMSolverMultistepScheduler.from_config(
        txt2img.scheduler.config,
        algorithm_type="dpmsolver++",
        solver_order=2,
    )
    txt2img.to(device)
    if device.type == "cuda":
        _configure_cuda(txt2img, settings)
    img2img = StableDiffusionImg2ImgPipeline(**txt2img.components, requires_safety_checker=False)
    for pipe in (txt2img, img2img):
        pipe.set_progress_bar_config(disable=True)
    return txt2img, img2img


def load_models(settings: InferenceSettings, roles: tuple[str, ...] = ("base", "caption")) -> ModelSet:
    """Load `roles` now (base is always loaded); vqa and control may also come lazily later."""
    preset = get_preset(settings.models)
    device = pick_device(settings.device)
    if device.type == "cuda" and device.index is not None:
        # Streams, graph pools and captures use the *current* device: make it the models' (--device cuda:1).
        torch.cuda.set_device(device)
    _quiet_loading()
    if preset.name == "tiny" and device.type == "cpu":
        # Tiny ops gain nothing from intra-op threads, and when several processes share the cores
        # (tests, a worker beside the bot) OpenMP's spinning made a job 5-25x slower on 2 cores.
        torch.set_num_threads(1)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    txt2img, img2img = load_base(settings, device, dtype)
    captioner = None
    if "caption" in roles:
        path = resolve(settings, "caption")
        captioner = _load("caption", path, lambda: Captioner.from_pretrained(path, device, dtype))
    base_id = model_id(settings, "base")
    models = ModelSet(
        preset=preset,
        device=device,
        dtype=dtype,
        base_id=base_id,
        resolution=preset.resolution,
        txt2img=txt2img,
        img2img=img2img,
        captioner=captioner,
        settings=settings,
    )
    if "vqa" in roles:
        models.vqa()
    if "control" in roles:
        models.controlnet()
    return models
