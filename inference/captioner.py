"""BLIP captions: batched, deterministic (beam search, no sampling), cleaned to one lowercase phrase."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from PIL import Image

FALLBACK_CAPTION = "a portrait of a person"
# BLIP-large captions best when conditioned on this prefix; it is stripped from the answer.
PREFIX = "a photography of"
# Known BLIP-large artefacts ("arafed man", "araffe woman") and special tokens that survive decoding.
_JUNK = re.compile(r"\[[a-z0-9_]+\]|\b(?:araf+e?d?|arafed|araffe|arafe)\b")
_ALLOWED = re.compile(r"[^a-z0-9' ,-]+")


def clean_caption(text: str, prefix: str = PREFIX, max_words: int = 20) -> str:
    """Lowercase, drop special tokens and the prompt prefix, collapse repeats, trim punctuation."""
    text = _JUNK.sub(" ", text.lower())
    text = text.replace(" ##", "").replace("##", "")
    text = _ALLOWED.sub(" ", text)
    text = re.sub(r"\s*,\s*", ", ", text)
    words: list[str] = []
    for word in text.split():
        if not words or word != words[-1]:  # "a a man man" -> "a man"
            words.append(word)
    text = " ".join(words[:max_words])
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    text = text.strip(" ,'-")
    return text if re.search(r"[a-z]{2}", text) else FALLBACK_CAPTION


class Captioner:
    """`caption(images) -> captions`, one batched `generate` call."""

    def __init__(
        self,
        model,
        processor,
        device: torch.device,
        dtype: torch.dtype,
        *,
        num_beams: int = 3,
        max_new_tokens: int = 20,
        prefix: str = PREFIX,
    ):
        self.model = model.eval()
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.prefix = prefix

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: torch.device, dtype: torch.dtype, **kwargs
    ) -> Captioner:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        processor = BlipProcessor.from_pretrained(path)
        model = BlipForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, processor, device, dtype, **kwargs)

    @torch.inference_mode()
    def caption(self, images: list[Image.Image]) -> list[str]:
        if not images:
            return []
        inputs = self.processor(
            images=[im.convert("RGB") for im in images],
            text=[self.prefix] * len(images) if self.prefix else None,
            return_tensors="pt",
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model.generate(
            **inputs,
            do_sample=False,
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
            repetition_penalty=1.3,
        )
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        return [clean_caption(t, self.prefix) for t in texts]
