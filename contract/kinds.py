"""The job kinds: what the bot asks for (a request) and what a worker answers (a result), as types.

The bot builds a request and stores `to_payload()` in jobs.payload; a worker reads it back with
`from_payload()`, which is strict: a malformed payload is BAD_REQUEST, never a guess. A worker returns
a result's `to_dict()` as jobs.result and the bot reads it with `from_dict()`. Every path is relative to
DATA_DIR. docs/jobs.md describes the table around these types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from contract.payload import as_bool, as_text, as_text_list, payload_value, require, without_none
from contract.styles import ARTISTS, STYLES
from jobs.errors import BAD_REQUEST, JobError


class JobKind(StrEnum):
    STYLIZE = "stylize"
    TRAIN = "train"
    PORTRAIT = "portrait"
    POSE = "pose"


# Higher runs first. The trainer yields between optimizer steps to any waiting job of INTERACTIVE_PRIORITY.
INTERACTIVE_PRIORITY = 10
TRAIN_PRIORITY = 0
INTERACTIVE_KINDS = (JobKind.STYLIZE, JobKind.PORTRAIT, JobKind.POSE)
# A finished job of these kinds reaches its user as an album of pictures (bot/delivery.py), so /stats and
# the artbooth_albums_delivered metric count it: jobs/ops_store.py and bot/metrics.py both read this.
ALBUM_KINDS = (JobKind.STYLIZE, JobKind.PORTRAIT, JobKind.POSE)

# Selfies for a personal model: the bot collects MIN..MAX, the trainer refuses fewer than MIN usable ones.
MIN_SELFIES = 3
MAX_SELFIES = 20
DEFAULT_TOKEN = "sks"  # the rare identifier the LoRA learns the user as
SUBJECT_CLASSES = ("man", "woman", "boy", "girl", "person", "dog", "cat")
DEFAULT_CLASS = "person"
TRAIN_MAX_ATTEMPTS = 2

STYLIZE_STEPS = 30
PORTRAITS_PER_JOB = 4


class TrainPhase(StrEnum):
    """jobs.progress_text of a running train job: which part of the training the progress is of."""

    CLASS_IMAGES = "class_images"  # painting the prior-preservation images (cached per class)
    TRAINING = "training"  # optimizer steps on the user's selfies

    @classmethod
    def of(cls, progress_text: str | None) -> TrainPhase | None:
        try:
            return cls(progress_text) if progress_text else None
        except ValueError:
            return None


@dataclass(frozen=True)
class StylizeRequest:
    image: str
    styles: tuple[str, ...] = ARTISTS
    variants: int = 1
    seed: int | None = None  # None: derived from the photo's bytes (the same photo, the same pictures)
    steps: int | None = None  # None: STYLIZE_STEPS
    mode: str = "img2img"  # img2img | text2img
    fast: bool | None = None  # the few-step schedule (fast mode); None: the normal one

    def to_payload(self) -> dict[str, Any]:
        return without_none(asdict(self))

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StylizeRequest:
        styles = payload_value(payload, "styles", as_text_list) or ARTISTS
        unknown = [s for s in styles if s not in STYLES]
        if unknown:
            raise JobError(BAD_REQUEST, f"unknown styles: {', '.join(unknown)}")
        return cls(
            image=require(payload, "image", as_text),
            styles=styles,
            variants=payload_value(payload, "variants", int, 1),
            seed=payload_value(payload, "seed", int),
            steps=payload_value(payload, "steps", int),
            mode=payload_value(payload, "mode", as_text, "img2img"),
            fast=payload_value(payload, "fast", as_bool),
        )


@dataclass(frozen=True)
class StyledImage:
    path: str
    style: str


@dataclass(frozen=True)
class StylizeResult:
    caption: str
    images: list[StyledImage]
    seconds: float
    seed: int
    fast: bool = False  # the few-step schedule painted it (the bot says so)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, result: dict[str, Any] | None) -> StylizeResult:
        result = result or {}
        images = [
            StyledImage(str(i.get("path", "")), str(i.get("style", ""))) for i in result.get("images", [])
        ]
        return cls(
            str(result.get("caption", "")),
            images,
            result.get("seconds", 0.0),
            result.get("seed", 0),
            result.get("fast") is True,
        )


@dataclass(frozen=True)
class TrainRequest:
    photos: tuple[str, ...]
    cls: str = DEFAULT_CLASS
    token: str = DEFAULT_TOKEN
    steps: int | None = None  # None: the trainer's defaults for these four
    rank: int | None = None
    lr: float | None = None
    train_text_encoder: bool | None = None
    seed: int | None = None

    def to_payload(self) -> dict[str, Any]:
        payload = without_none(asdict(self))
        payload["class"] = payload.pop("cls")
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TrainRequest:
        return cls(
            photos=payload_value(payload, "photos", as_text_list, ()),
            cls=payload_value(payload, "class", as_text) or DEFAULT_CLASS,
            token=payload_value(payload, "token", as_text) or DEFAULT_TOKEN,
            steps=payload_value(payload, "steps", int),
            rank=payload_value(payload, "rank", int),
            lr=payload_value(payload, "lr", float),
            train_text_encoder=payload_value(payload, "train_text_encoder", as_bool),
            seed=payload_value(payload, "seed", int),
        )

    def overrides(self) -> dict[str, Any]:
        """The optional training settings the request sets (the keys of the trainer's config)."""
        fields = dict(steps=self.steps, rank=self.rank, lr=self.lr, seed=self.seed)
        fields["train_text_encoder"] = self.train_text_encoder
        return without_none(fields)


@dataclass(frozen=True)
class TrainResult:
    lora: str
    steps: int
    seconds: float
    token: str
    cls: str
    photos: int = 0
    class_images_generated: int = 0
    yielded: int = 0

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["class"] = result.pop("cls")
        return result

    @classmethod
    def from_dict(cls, result: dict[str, Any] | None) -> TrainResult | None:
        """None when the result names no LoRA (nothing to remember)."""
        result = result or {}
        if not result.get("lora"):
            return None
        return cls(
            lora=str(result["lora"]),
            steps=int(result.get("steps") or 0),
            seconds=float(result.get("seconds") or 0),
            token=str(result.get("token") or DEFAULT_TOKEN),
            cls=str(result.get("class") or DEFAULT_CLASS),
            photos=int(result.get("photos") or 0),
            class_images_generated=int(result.get("class_images_generated") or 0),
            yielded=int(result.get("yielded") or 0),
        )


@dataclass(frozen=True)
class PortraitRequest:
    scene: str  # English prompt text after "a photo of sks man, "
    lora: str | None = None  # None: the user's own, loras/<user id>/lora.safetensors
    title: str | None = None  # what the user typed or picked (for the caption)
    cls: str | None = None  # None: what the LoRA's metadata says
    token: str | None = None
    n: int = PORTRAITS_PER_JOB
    seed: int | None = None  # None: the job id
    fast: bool | None = None  # the few-step schedule stacked on the user's LoRA; None: the normal one

    def to_payload(self) -> dict[str, Any]:
        payload = without_none(asdict(self))
        if "cls" in payload:
            payload["class"] = payload.pop("cls")
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PortraitRequest:
        return cls(
            scene=payload_value(payload, "scene", as_text, ""),
            lora=payload_value(payload, "lora", as_text),
            title=payload_value(payload, "title", as_text),
            cls=payload_value(payload, "class", as_text),
            token=payload_value(payload, "token", as_text),
            n=payload_value(payload, "n", int, PORTRAITS_PER_JOB),
            seed=payload_value(payload, "seed", int),
            fast=payload_value(payload, "fast", as_bool),
        )


@dataclass(frozen=True)
class PortraitResult:
    prompt: str
    images: list[str] = field(default_factory=list)  # paths
    seconds: float = 0.0
    seed: int = 0
    fast: bool = False  # the few-step schedule painted it

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "images": [{"path": p} for p in self.images],
            "seconds": self.seconds,
            "seed": self.seed,
            "fast": self.fast,
        }

    @classmethod
    def from_dict(cls, result: dict[str, Any] | None) -> PortraitResult:
        result = result or {}
        paths = [str(i.get("path", "")) for i in result.get("images", [])]
        return cls(
            str(result.get("prompt", "")),
            paths,
            result.get("seconds", 0.0),
            result.get("seed", 0),
            result.get("fast") is True,
        )


@dataclass(frozen=True)
class PoseRequest:
    """/pose: the user (their LoRA) in the pose and composition of a reference photo (ControlNet edges)."""

    reference: str  # the reference photo, under uploads/<user id>/
    scene: str = ""  # optional English scene text ("as a knight"); the reference's caption is added
    lora: str | None = None  # None: the user's own, loras/<user id>/lora.safetensors
    title: str | None = None  # what the user typed (for the album's caption)
    cls: str | None = None  # None: what the LoRA's metadata says
    token: str | None = None
    n: int = PORTRAITS_PER_JOB
    seed: int | None = None  # None: the job id

    def to_payload(self) -> dict[str, Any]:
        payload = without_none(asdict(self))
        if "cls" in payload:
            payload["class"] = payload.pop("cls")
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PoseRequest:
        return cls(
            reference=require(payload, "reference", as_text),
            scene=payload_value(payload, "scene", as_text, ""),
            lora=payload_value(payload, "lora", as_text),
            title=payload_value(payload, "title", as_text),
            cls=payload_value(payload, "class", as_text),
            token=payload_value(payload, "token", as_text),
            n=payload_value(payload, "n", int, PORTRAITS_PER_JOB),
            seed=payload_value(payload, "seed", int),
        )


@dataclass(frozen=True)
class PoseResult:
    prompt: str
    caption: str  # BLIP's caption of the reference (part of the prompt)
    images: list[str] = field(default_factory=list)  # paths
    seconds: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "caption": self.caption,
            "images": [{"path": p} for p in self.images],
            "seconds": self.seconds,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, result: dict[str, Any] | None) -> PoseResult:
        result = result or {}
        paths = [str(i.get("path", "")) for i in result.get("images", [])]
        return cls(
            str(result.get("prompt", "")),
            str(result.get("caption", "")),
            paths,
            result.get("seconds", 0.0),
            result.get("seed", 0),
        )
