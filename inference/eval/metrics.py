"""The numbers: CLIP score, CLIP-I, DINO, and BLIP VQA yes/no. Pure functions over loaded models.

Conventions (as in the papers and torchmetrics):
- CLIP score = 100 × max(cos(text, image), 0)  — torchmetrics' `CLIPScore`, in [0, 100].
- CLIP-T     = cos(text, image)                 — the DreamBooth paper's scale (0.305 for SD).
- CLIP-I     = cos(image, image) of CLIP image embeddings, in [-1, 1].
- DINO       = cos of ViT-S/16 CLS tokens, in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from inference.eval.metric_models import MetricModel


def _tensor(features: object) -> torch.Tensor:
    # transformers 5 returns a BaseModelOutputWithPooling (projection in pooler_output); 4.x a tensor
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def _rgb(images: Sequence[Image.Image]) -> list[Image.Image]:
    return [im.convert("RGB") for im in images]


@torch.inference_mode()
def clip_image_embeds(clip: MetricModel, images: Sequence[Image.Image]) -> torch.Tensor:
    """Unit-norm CLIP image embeddings, [N, D] float32 on the CPU."""
    pixels = clip.processor(images=_rgb(images), return_tensors="pt")["pixel_values"].to(clip.device)
    emb = _tensor(clip.model.get_image_features(pixel_values=pixels.to(clip.model.dtype))).float()
    return torch.nn.functional.normalize(emb, dim=-1).cpu()


@torch.inference_mode()
def clip_text_embeds(clip: MetricModel, texts: Sequence[str]) -> torch.Tensor:
    """Unit-norm CLIP text embeddings; long prompts are cut at CLIP's 77 tokens, as SD itself does."""
    max_len = clip.model.config.text_config.max_position_embeddings
    tokens = clip.processor(
        text=list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_len
    )
    tokens = {k: v.to(clip.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
    emb = _tensor(clip.model.get_text_features(**tokens)).float()
    return torch.nn.functional.normalize(emb, dim=-1).cpu()


@torch.inference_mode()
def dino_embeds(dino: MetricModel, images: Sequence[Image.Image]) -> torch.Tensor:
    """Unit-norm DINO CLS-token embeddings (the DreamBooth paper's DINO metric), [N, D]."""
    pixels = dino.processor(images=_rgb(images), return_tensors="pt")["pixel_values"].to(dino.device)
    cls = dino.model(pixel_values=pixels.to(dino.model.dtype)).last_hidden_state[:, 0].float()
    return torch.nn.functional.normalize(cls, dim=-1).cpu()


def _paired_cos(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return [float(x) for x in (a * b).sum(-1).clamp(-1.0, 1.0)]


def clip_text_image_score(
    clip: MetricModel, images: Sequence[Image.Image], texts: Sequence[str]
) -> list[float]:
    """CLIP score per (image, text) pair: 100 × max(cos, 0), in [0, 100]."""
    cos = _paired_cos(clip_image_embeds(clip, images), clip_text_embeds(clip, texts))
    return [clip_score_from_cosine(c) for c in cos]


def clip_score_from_cosine(cosine: float) -> float:
    return 100.0 * max(cosine, 0.0)


def clip_text_image_cosine(
    clip: MetricModel, images: Sequence[Image.Image], texts: Sequence[str]
) -> list[float]:
    """CLIP-T per pair: the raw cosine, the DreamBooth paper's scale."""
    return _paired_cos(clip_image_embeds(clip, images), clip_text_embeds(clip, texts))


def clip_image_similarity(
    clip: MetricModel, images: Sequence[Image.Image], refs: Sequence[Image.Image]
) -> list[float]:
    """CLIP-I per (image, reference) pair, in [-1, 1]."""
    return _paired_cos(clip_image_embeds(clip, images), clip_image_embeds(clip, refs))


def dino_similarity(
    dino: MetricModel, images: Sequence[Image.Image], refs: Sequence[Image.Image]
) -> list[float]:
    """DINO per (image, reference) pair, in [-1, 1]."""
    return _paired_cos(dino_embeds(dino, images), dino_embeds(dino, refs))


def mean_similarity_to_set(
    emb: torch.Tensor, refs: torch.Tensor, *, exclude_self: bool = False
) -> list[float]:
    """For each row of emb, its mean cosine to every row of refs (DreamBooth: a generated image vs all real
    photos). With exclude_self (emb is refs), the diagonal is left out: real-vs-real without the trivial 1s."""
    sims = (emb @ refs.T).clamp(-1.0, 1.0)
    if not exclude_self:
        return [float(x) for x in sims.mean(dim=1)]
    n = sims.shape[0]
    if n < 2:
        return []
    off = sims.sum(dim=1) - sims.diagonal()
    return [float(x) for x in off / (n - 1)]


def yes_from_answer(answer: str) -> bool:
    return answer.strip().lower().split(" ")[0].strip(".,!") in ("yes", "yeah", "yep")


@torch.inference_mode()
def vqa_answers(
    processor: object,
    model: torch.nn.Module,
    images: Sequence[Image.Image],
    question: str,
    *,
    max_new_tokens: int = 5,
) -> list[str]:
    """BLIP VQA's decoded answer for each image to the same question (greedy, deterministic)."""
    device = next(model.parameters()).device
    inputs = processor(images=_rgb(images), text=[question] * len(images), return_tensors="pt").to(device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return [a.strip() for a in processor.batch_decode(out, skip_special_tokens=True)]


def vqa_yes(
    processor: object, model: torch.nn.Module, images: Sequence[Image.Image], question: str
) -> list[bool]:
    """yes = True per image; anything but a leading 'yes' counts as no."""
    return [yes_from_answer(a) for a in vqa_answers(processor, model, images, question)]
