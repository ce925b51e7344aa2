"""A prompt for a class-conditional model: the ImageNet class nearest to it by CLIP text similarity.

BigGAN draws one of the 1000 ImageNet classes, not a sentence, so the models study turns each prompt
into the class whose CLIP text embedding ("a photo of a {name}", CLIP's own zero-shot template) is
closest to the prompt's, with the judge's CLIP: the same model that then scores the picture against the
full prompt. The names ship with the code (imagenet_classes.txt): no package on the image carries them,
and the study runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from inference.eval.metric_models import MetricModel
from inference.eval.metrics import clip_text_embeds

CLASS_TEMPLATE = "a photo of a {}"
_BATCH = 250  # class texts per CLIP call: 1000 at once is ~1 GB of activations for ViT-L's text tower


@cache
def imagenet_classes() -> tuple[str, ...]:
    lines = (Path(__file__).with_name("imagenet_classes.txt")).read_text(encoding="utf-8").splitlines()
    names = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt holds {len(names)} names, not 1000")
    return names


@dataclass(frozen=True)
class ClassMatch:
    index: int  # ImageNet class index, 0..999
    name: str
    cosine: float  # CLIP text-text cosine between the prompt and "a photo of a <name>"


def class_text_embeds(clip: MetricModel) -> torch.Tensor:
    names = imagenet_classes()
    texts = [CLASS_TEMPLATE.format(name) for name in names]
    return torch.cat([clip_text_embeds(clip, texts[i : i + _BATCH]) for i in range(0, len(texts), _BATCH)])


def nearest_classes(clip: MetricModel, prompts: list[str]) -> list[ClassMatch]:
    """For each prompt, the ImageNet class whose text is nearest in CLIP's text space (ties: lower index)."""
    sims = clip_text_embeds(clip, prompts) @ class_text_embeds(clip).T
    best = sims.argmax(dim=1)
    names = imagenet_classes()
    return [ClassMatch(int(i), names[int(i)], float(sims[row, i])) for row, i in enumerate(best)]
