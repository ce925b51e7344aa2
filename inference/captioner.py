"""BLIP captions: batched, deterministic (greedy or beam search, never sampling), cleaned to one lowercase phrase."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from PIL import Image

from inference.graphs import capture, warm_up

log = logging.getLogger(__name__)

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


class GreedyDecoder:
    """BLIP's text decoder, greedy, over a fixed-length token buffer.

    Each step reruns the causal decoder on the whole buffer (prompt + at most `max_new_tokens`, about
    25 tokens: trivial compute) and writes the argmax after the current position, so every step has
    the same shapes. The host looks for the end of every caption only every LOOK_EVERY tokens (a real
    BLIP ends after about 10 of its 20; a random one never does). On CUDA one step is captured as a CUDA
    graph and replayed: the eager step launches ~400 small kernels from Python (14 ms a token on the H100
    host), a replay costs about a millisecond. Equal to `generate(do_sample=False, num_beams=1)` up to
    float rounding.
    """

    LOOK_EVERY = 4

    def __init__(self, text_decoder, pad_id: int, use_graphs: bool):
        self.text_decoder = text_decoder
        self.pad_id = pad_id
        self.use_graphs = use_graphs
        self._graphs: dict[tuple, tuple] = {}  # shapes -> (graph, ids, pos, embeds, mask)

    @staticmethod
    def causal_mask(batch: int, length: int, dtype: torch.dtype, device) -> torch.Tensor:
        """A ready 4D additive mask: transformers then builds none itself (its builder copies a CPU
        tensor to the GPU, which a CUDA graph capture refuses)."""
        mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device).triu(1)
        return mask.view(1, 1, length, length).expand(batch, 1, length, length)

    def _step(self, ids: torch.Tensor, pos: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor) -> None:
        logits = self.text_decoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=embeds,
            use_cache=False,
            return_dict=True,
        ).logits
        at = pos.view(1, 1, 1).expand(ids.shape[0], 1, logits.shape[-1])
        nxt = logits.gather(1, at).squeeze(1).argmax(-1, keepdim=True)
        ids.scatter_(1, (pos + 1).view(1, 1).expand(ids.shape[0], 1), nxt)
        pos.add_(1)

    def _graph(self, ids: torch.Tensor, pos: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor):
        key = (*ids.shape, *embeds.shape[1:], embeds.dtype)
        if key not in self._graphs:
            static = (ids.clone(), pos.clone(), embeds.clone(), mask)
            # the step writes into ids and pos: warmed on copies
            warm_up(lambda: self._step(static[0].clone(), static[1].clone(), static[2], mask), times=1)
            graph, _ = capture(lambda: self._step(*static))
            self._graphs[key] = (graph, *static)
        return self._graphs[key]

    def __call__(
        self, embeds: torch.Tensor, prompt: torch.Tensor, max_new_tokens: int, eos_id: int
    ) -> torch.Tensor:
        batch, start = prompt.shape
        ids = torch.full((batch, start + max_new_tokens), self.pad_id, dtype=torch.long, device=prompt.device)
        ids[:, :start] = prompt
        pos = torch.full((1,), start - 1, dtype=torch.long, device=prompt.device)
        mask = self.causal_mask(batch, ids.shape[1], embeds.dtype, embeds.device)
        if self.use_graphs:
            try:
                graph, s_ids, s_pos, s_embeds, _ = self._graph(ids, pos, embeds, mask)
            except RuntimeError as exc:  # a transformers version whose decoder cannot be captured
                log.warning("BLIP decoding without CUDA graphs: %s", str(exc).splitlines()[0])
                self.use_graphs = False
            else:
                s_ids.copy_(ids)
                s_pos.copy_(pos)
                s_embeds.copy_(embeds)
                for made in range(1, max_new_tokens + 1):
                    graph.replay()
                    # stop once every caption ended (a real BLIP after ~10 of 20 tokens), looking every few
                    # tokens: each look waits for the GPU
                    if (
                        made % self.LOOK_EVERY == 0
                        and made < max_new_tokens
                        and self._ended(s_ids, start, eos_id)
                    ):
                        break
                return s_ids.clone()
        for _ in range(max_new_tokens):
            self._step(ids, pos, embeds, mask)
            if self._ended(ids, start, eos_id):
                break
        return ids

    @staticmethod
    def _ended(ids: torch.Tensor, start: int, eos_id: int) -> bool:
        return bool((ids[:, start:] == eos_id).any(-1).all())


class Captioner:
    """`caption(images) -> captions`: one batched vision pass, then greedy decoding (see GreedyDecoder).

    Greedy, as BLIP's model card uses it. `num_beams > 1` switches to transformers' `generate` with
    beam search (slower; captions differ little).
    """

    def __init__(
        self,
        model,
        processor,
        device: torch.device,
        dtype: torch.dtype,
        *,
        num_beams: int = 1,
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
        text = model.config.text_config
        self.bos_id, self.eos_id, self.pad_id = text.bos_token_id, text.sep_token_id, text.pad_token_id
        self.decoder = GreedyDecoder(model.text_decoder, self.pad_id, use_graphs=device.type == "cuda")

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: torch.device, dtype: torch.dtype, **kwargs
    ) -> Captioner:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        processor = BlipProcessor.from_pretrained(path)
        model = BlipForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, processor, device, dtype, **kwargs)

    def _inputs(self, images: list[Image.Image]):
        inputs = self.processor(
            images=[im.convert("RGB") for im in images],
            text=[self.prefix] * len(images) if self.prefix else None,
            return_tensors="pt",
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def _prompt(self, inputs, batch: int) -> torch.Tensor:
        """BLIP's decoder prompt: [DEC] + the prefix's tokens, without the tokenizer's [CLS]/[SEP]."""
        if "input_ids" not in inputs:
            return torch.full((batch, 1), self.bos_id, dtype=torch.long, device=self.device)
        prompt = inputs["input_ids"][:, :-1].clone()
        prompt[:, 0] = self.bos_id
        return prompt

    @torch.inference_mode()
    def generate_ids(self, images: list[Image.Image]) -> torch.Tensor:
        inputs = self._inputs(images)
        if self.num_beams > 1:
            return self.model.generate(
                **inputs, do_sample=False, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens
            )
        embeds = self.model.vision_model(pixel_values=inputs["pixel_values"])[0]
        return self.decoder(embeds, self._prompt(inputs, len(images)), self.max_new_tokens, self.eos_id)

    def caption(self, images: list[Image.Image]) -> list[str]:
        if not images:
            return []
        ids = self.generate_ids(images).tolist()
        cut = [row[: row.index(self.eos_id, 1)] if self.eos_id in row[1:] else row for row in ids]
        texts = self.processor.batch_decode(cut, skip_special_tokens=True)
        return [clean_caption(t, self.prefix) for t in texts]
