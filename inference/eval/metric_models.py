"""The models that *judge* pictures: CLIP (text–image and image–image) and DINO (image–image).

Real ids by default; `MODELS=tiny` builds random tiny twins under DATA_DIR/models/tiny/<role>/ with
save_pretrained and loads them back through the same from_pretrained path as the real weights.
`MODEL_CLIP` / `MODEL_DINO` (settings.overrides["clip"|"dino"]) point at any hub id or local dir.
`sd15-random` uses the real ids: a randomly initialised judge measures nothing, and the metric models
are small next to SD, so benchmarks lose nothing by loading the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.settings import InferenceSettings
from inference.tiny import build_atomically

REAL_IDS = {
    "clip": "openai/clip-vit-large-patch14",
    "dino": "facebook/dino-vits16",
}


@dataclass
class MetricModel:
    """A model, its processor, and where it runs."""

    name: str  # the id or path it was loaded from; reports name the judge
    model: torch.nn.Module
    processor: object
    device: torch.device


def resolve_metric(settings: InferenceSettings, role: str) -> str:
    """Hub id or local directory for a metric role ('clip' or 'dino'), building the tiny twin if needed."""
    if role in settings.overrides:
        return settings.overrides[role]
    if settings.models == "tiny":
        target = Path(settings.data_dir) / "models" / "tiny" / role
        build_once(target, _TINY_BUILDERS[role])
        return str(target)
    return REAL_IDS[role]


def load_clip(settings: InferenceSettings, device: torch.device | str = "cpu") -> MetricModel:
    from transformers import CLIPModel, CLIPProcessor

    name = resolve_metric(settings, "clip")
    model = CLIPModel.from_pretrained(name).to(device).eval()
    return MetricModel(name, model, CLIPProcessor.from_pretrained(name), torch.device(device))


def load_dino(settings: InferenceSettings, device: torch.device | str = "cpu") -> MetricModel:
    from transformers import AutoImageProcessor, ViTModel

    name = resolve_metric(settings, "dino")
    model = ViTModel.from_pretrained(name, add_pooling_layer=False).to(device).eval()
    return MetricModel(name, model, AutoImageProcessor.from_pretrained(name), torch.device(device))


# ---- tiny twins --------------------------------------------------------------------------------


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """A metric twin, built once with the same crash-safe build as the generation models' twins."""
    return build_atomically(target, f"{__name__}/{target.name}", build)


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-level alphabet, each char alone and word-final, plus the two specials: no merges needed."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable + [256 + i for i in range(256 - len(printable))]
    chars = [chr(c) for c in codes]
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def _build_tiny_clip(out: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab = _byte_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    vision = dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(out)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=[]),
    )
    processor.save_pretrained(out)


def _build_tiny_dino(out: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)


_TINY_BUILDERS: dict[str, Callable[[Path], None]] = {"clip": _build_tiny_clip, "dino": _build_tiny_dino}
