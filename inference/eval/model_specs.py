"""What `eval models --models` accepts: one word per model, `[FAMILY:]ID[+LORA]`. Torch-free.

    stabilityai/stable-diffusion-2-1-base                     SD 1.x/2.x (the default family, as before)
    sdxl:stabilityai/stable-diffusion-xl-base-1.0             SDXL through StableDiffusionXLPipeline
    sdxl:stabilityai/stable-diffusion-xl-base-1.0+ehristoforu/dalle-3-xl-v2   ... with a LoRA on it
    biggan:biggan-deep-512                                    BigGAN-deep (or a folder of its weights)

The family is a prefix because the pipeline must be known before anything is loaded (a hub id says
nothing offline). One word per model keeps `--models` a plain list; `+` reads as "base plus adapter" and
appears in no hub id. A LoRA is a hub id, a folder, a .safetensors file, or `owner/repo/file.safetensors`
(a hub repo with several files). The text as written is the model's name in results.json and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("sd", "sdxl", "biggan")


@dataclass(frozen=True)
class ModelSpec:
    text: str  # as written on the command line: the key of its units and its row in the report
    family: str  # sd | sdxl | biggan
    base: str  # hub id, local directory, or a twin's name (tiny, tiny-seedN) under MODELS=tiny
    lora: str | None = None

    @property
    def uses_scheduler(self) -> bool:
        """A GAN draws in one forward pass: no scheduler, so one column instead of one per scheduler."""
        return self.family != "biggan"

    @property
    def label(self) -> str:
        """Short name for chart axes and the contact sheet."""
        name = self.base.rstrip("/").split("/")[-1]
        if self.family == "sdxl" and self.lora:
            return f"{self.lora.rstrip('/').split('/')[-1].removesuffix('.safetensors')} (SDXL+LoRA)"
        if self.family == "sdxl":
            return f"{name} (SDXL)"
        if self.family == "biggan":
            return name if name.startswith("biggan") else f"BigGAN {name}"
        return name


def parse_model_spec(text: str) -> ModelSpec:
    family, sep, rest = text.partition(":")
    if not sep or family not in FAMILIES:
        # no known prefix: an SD checkpoint (hub id or path; a path may hold a ':' of its own)
        family, rest = "sd", text
    base, plus, lora = rest.partition("+")
    if not base or (plus and not lora):
        raise ValueError(
            f"model {text!r}: expected [FAMILY:]ID[+LORA] with FAMILY one of {', '.join(FAMILIES)}"
        )
    if lora and family != "sdxl":
        raise ValueError(f"model {text!r}: a +LORA is supported on sdxl: models only")
    return ModelSpec(text=text, family=family, base=base, lora=lora or None)
