"""Study 2, "models": CLIP score for a grid of models × schedulers, N fixed seeds per prompt.

The models are those of the study the bot grew from: SD 1.x/2.x checkpoints, "DALL-E 3 XL v2" (a LoRA on
SDXL) and BigGAN-deep (model_specs.py: how to name each). Unit of work = (model, scheduler, prompt, seed):
one image, its CLIP cosine to its prompt, the CLIP score (100 × max(cos, 0), torchmetrics' scale; the
CLIP model is named in the report) and the seconds it took. BigGAN draws ImageNet classes, so each
prompt first becomes its nearest class by CLIP text similarity (stored as a unit of its own: the report
shows it, a resumed run reuses it); a GAN has no scheduler, so its row has one column, `none`.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from inference.eval import report as rep
from inference.eval.generators import NO_SCHEDULER, load_generator
from inference.eval.metric_models import MetricModel, load_clip
from inference.eval.metrics import clip_score_from_cosine, clip_text_image_cosine
from inference.eval.model_specs import ModelSpec, parse_model_spec
from inference.eval.original_study import beside_original
from inference.settings import InferenceSettings

REAL_MODELS: tuple[str, ...] = (
    "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-1",
    "prompthero/openjourney-v4",
    "dreamlike-art/dreamlike-photoreal-2.0",
    "sdxl:stabilityai/stable-diffusion-xl-base-1.0+ehristoforu/dalle-3-xl-v2",  # "DALL-E 3 XL v2"
    "biggan:biggan-deep-512",
)
# the tiny base, a twin with another UNet seed, the SDXL twin with its random LoRA, the BigGAN twin
TINY_MODELS: tuple[str, ...] = ("tiny", "tiny-seed1", "sdxl:tiny+tiny-lora", "biggan:tiny")


@dataclass
class ModelsStudy:
    models: list[str]
    schedulers: list[str]
    prompts: list[str]
    n: int = 4  # seeds per (cell, prompt): seed, seed+1, ...
    steps: int = 30
    seed: int = 0
    guidance: float = 7.5
    truncation: float = 0.4  # BigGAN's truncation (the BigGAN paper's trick: lower = typical, less varied)


def default_models(settings: InferenceSettings) -> list[str]:
    return list(TINY_MODELS if settings.models == "tiny" else REAL_MODELS)


def unit_key(model: str, scheduler: str, prompt_index: int, seed: int) -> str:
    return f"{model}|{scheduler}|p{prompt_index}|s{seed}"


def schedulers_of(study: ModelsStudy, spec: ModelSpec) -> list[str]:
    return list(study.schedulers) if spec.uses_scheduler else [NO_SCHEDULER]


def run(settings: InferenceSettings, out_dir, study: ModelsStudy) -> dict:
    from inference.models import pick_device

    specs = [parse_model_spec(m) for m in study.models]
    clip = load_clip(settings, pick_device(settings.device))
    store = rep.ResultStore(
        out_dir, "models", {**study.__dict__, "preset": settings.models, "clip": clip.name}
    )
    classes = _imagenet_classes(store, clip, study) if any(s.family == "biggan" for s in specs) else {}
    seeds = [study.seed + i for i in range(study.n)]
    total = sum(len(schedulers_of(study, s)) for s in specs) * len(study.prompts) * len(seeds)
    with tqdm(total=total, desc="models study", unit="img") as bar:
        for spec in specs:
            cells = [
                (s, p, seed)
                for s in schedulers_of(study, spec)
                for p in range(len(study.prompts))
                for seed in seeds
            ]
            todo = [c for c in cells if not store.has(unit_key(spec.text, *c))]
            bar.update(len(cells) - len(todo))
            if todo:
                _run_model(store, settings, spec, study, clip, classes, todo, bar)
    summary = summarize(store, study)
    store.set_summary(summary)
    from inference.eval.models_report import write_report

    write_report(store, study, summary)
    return summary


def _imagenet_classes(store: rep.ResultStore, clip: MetricModel, study: ModelsStudy) -> dict[str, int]:
    """prompt -> ImageNet class index, computed once per run and kept in results.json."""
    from inference.eval.imagenet import nearest_classes

    keys = [f"imagenet|p{p}" for p in range(len(study.prompts))]
    if not all(store.has(k) for k in keys):
        for key, prompt, match in zip(keys, study.prompts, nearest_classes(clip, study.prompts), strict=True):
            store.put(
                key,
                {
                    "kind": "imagenet_class",
                    "prompt": prompt,
                    "class_index": match.index,
                    "class_name": match.name,
                }
                | {"cosine": match.cosine},
            )
    return {store.units[k]["prompt"]: store.units[k]["class_index"] for k in keys}


def _run_model(store, settings, spec: ModelSpec, study, clip, classes, todo, bar) -> None:
    gen = load_generator(settings, spec, truncation=study.truncation, classes=classes)
    for sched in dict.fromkeys(s for s, _, _ in todo):
        gen.use_scheduler(sched)
        for _, p, seed in (c for c in todo if c[0] == sched):
            key = unit_key(spec.text, sched, p, seed)
            store.put(key, _generate_one(store, key, gen, clip, study, spec, sched, p, seed))
            bar.update(1)
    del gen
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _generate_one(store, key, gen, clip, study, spec: ModelSpec, sched: str, p: int, seed: int) -> dict:
    prompt = study.prompts[p]
    start = time.perf_counter()
    image = gen.generate(prompt, seed, study.steps, study.guidance)
    if gen.device.type == "cuda":
        torch.cuda.synchronize(gen.device)
    seconds = time.perf_counter() - start
    path = store.image_path(key)
    image.save(path)
    cosine = clip_text_image_cosine(clip, [image], [prompt])[0]
    return {
        "kind": "image",
        "model": spec.text,
        "family": spec.family,
        "scheduler": sched,
        "prompt": prompt,
        "seed": seed,
        "clip_score": clip_score_from_cosine(cosine),
        "clip_cosine": cosine,
        "seconds": seconds,
        "image": str(path.relative_to(store.dir)),
    }


def summarize(store: rep.ResultStore, study: ModelsStudy) -> dict:
    images = [u for u in store.units.values() if u.get("kind") == "image"]
    cells = {}
    for spec in map(parse_model_spec, study.models):
        for sched in schedulers_of(study, spec):
            units = [u for u in images if u["model"] == spec.text and u["scheduler"] == sched]
            if not units:
                continue
            best = max(units, key=lambda u: u["clip_score"])
            secs = sorted(u["seconds"] for u in units)
            cells[f"{spec.text}|{sched}"] = {
                "model": spec.text,
                "label": spec.label,
                "family": spec.family,
                "scheduler": sched,
                "clip_score": rep.stats([u["clip_score"] for u in units]),
                "clip_cosine": rep.stats([u["clip_cosine"] for u in units]),
                "seconds_per_image_median": secs[len(secs) // 2],
                "best_image": best["image"],
                "best_clip_score": best["clip_score"],
                "best_prompt": best["prompt"],
            }
    return {"cells": cells, "original": beside_original(images)}
