"""Training settings: defaults a practitioner would pick for a face LoRA on SD 1.5, all overridable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from contract.kinds import DEFAULT_TOKEN

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


@dataclass(frozen=True)
class TrainConfig:
    cls: str = "person"  # the class noun: man, woman, person, boy...
    token: str = DEFAULT_TOKEN  # the rare identifier (DreamBooth's "sks")
    rank: int = 32  # the studies: rank 4 too weak; 32/64/128 compared
    alpha: int | None = None  # None: = rank (scale 1, and loaders that ignore metadata agree)
    steps: int = 400  # ~80 passes over 5 selfies: identity without overfitting at lr 1e-4
    lr: float = 1e-4
    lr_scheduler: str = "constant_with_warmup"
    warmup_steps: int = 20
    batch_size: int = 1  # instance images per step (plus as many class images with prior preservation)
    with_prior: bool = True
    prior_loss_weight: float = 1.0
    num_class_images: int | None = None  # None: 100 at 512 px, 8 for the tiny models
    class_image_steps: int = 25
    train_text_encoder: bool = False
    text_encoder_lr: float = 5e-5
    seed: int = 0
    resolution: int | None = None  # None: the models' resolution
    mixed_precision: str = "auto"  # auto (fp16 autocast on CUDA, fp32 on CPU) | no
    gradient_checkpointing: bool = False
    # On CUDA, the UNet's forward+backward replayed as CUDA graphs: a step is ~3,800 kernel launches and
    # the profile showed the GPU idle 3/4 of the time waiting for the host. Falls back to eager if capture fails.
    cuda_graphs: bool = True
    max_grad_norm: float = 1.0
    weight_decay: float = 1e-4
    flip_p: float = 0.5
    unet_targets: tuple[str, ...] = UNET_TARGETS
    text_encoder_targets: tuple[str, ...] = TEXT_ENCODER_TARGETS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else self.rank

    @property
    def instance_prompt(self) -> str:
        return f"a photo of {self.token} {self.cls}"

    @property
    def class_prompt(self) -> str:
        return f"a photo of {self.cls}"

    def resolved(self, models_resolution: int) -> TrainConfig:
        """Fill the model-dependent defaults."""
        resolution = self.resolution or models_resolution
        num_class = self.num_class_images
        if num_class is None:
            num_class = 100 if resolution >= 384 else 8
        return replace(self, resolution=resolution, num_class_images=num_class)

    def validate(self) -> None:
        if self.steps < 1 or self.rank < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, rank and batch_size must be positive and lr > 0")
        if not self.token.strip() or not self.cls.strip():
            raise ValueError("token and class must not be empty")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
