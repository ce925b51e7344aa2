"""Study 2, "models": CLIP score for a grid of base models × schedulers, N fixed seeds per prompt.

Unit of work = (model, scheduler, prompt, seed): one image, its CLIP score against its prompt
(100 × cos, torchmetrics' scale, the CLIP model named in the report) and the seconds it took.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from inference.eval import report as rep
from inference.eval.metric_models import build_once, load_clip
from inference.eval.metrics import clip_score_from_cosine, clip_text_image_cosine
from inference.settings import InferenceSettings

REAL_MODELS: tuple[str, ...] = (
    "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-1",
    "prompthero/openjourney-v4",
    "dreamlike-art/dreamlike-photoreal-2.0",
)
TINY_MODELS: tuple[str, ...] = ("tiny", "tiny-seed1")  # the tiny base and a twin with another UNet seed

# name -> (diffusers class, extra from_config kwargs)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}

DEFAULT_PROMPTS: list[str] = [
    "a portrait of a young woman, oil painting by Vincent van Gogh",
    "stencil graffiti of a man on a concrete wall by Banksy",
    "a suprematist painting of a person by Kazimir Malevich",
    "a colorful orphism painting of the Eiffel tower by Robert Delaunay",
    "a photo of an astronaut riding a horse on the moon",
    "a close-up photo of a smiling old man with a grey beard",
    "a cat sitting on a windowsill at sunset, 35mm photo",
    "a cup of coffee on a wooden table, studio lighting",
]


@dataclass
class ModelsStudy:
    models: list[str]
    schedulers: list[str]
    prompts: list[str]
    n: int = 4  # seeds per (cell, prompt): seed, seed+1, ...
    steps: int = 30
    seed: int = 0
    guidance: float = 7.5


def default_models(settings: InferenceSettings) -> list[str]:
    return list(TINY_MODELS if settings.models == "tiny" else REAL_MODELS)


def model_path(settings: InferenceSettings, name: str) -> str:
    """Hub id or directory for a model name; under MODELS=tiny, 'tiny' and 'tiny-seedN' are built twins."""
    from inference.models import resolve

    if settings.models == "tiny" and name == "tiny":
        return resolve(settings, "base")
    if settings.models == "tiny" and name.startswith("tiny-seed"):
        seed = int(name.removeprefix("tiny-seed"))
        target = Path(settings.data_dir) / "models" / "tiny" / f"base-seed{seed}"
        build_once(target, lambda out: _reseeded_base(resolve(settings, "base"), seed, out))
        return str(target)
    return name


def _reseeded_base(source: str, seed: int, out: Path) -> None:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    pipe = StableDiffusionPipeline.from_pretrained(source, safety_checker=None, requires_safety_checker=False)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(pipe.unet.config)
    StableDiffusionPipeline(**{**pipe.components, "unet": unet}).save_pretrained(out)


def _scheduler(name: str, config):
    import diffusers

    cls_name, kwargs = SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(config, **kwargs)


def _load_pipe(settings: InferenceSettings, name: str):
    from inference.models import load_base, pick_device

    device = pick_device(settings.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    local = replace(settings, overrides={**settings.overrides, "base": model_path(settings, name)})
    pipe, _ = load_base(local, device, dtype)
    return pipe, device


def unit_key(model: str, scheduler: str, prompt_index: int, seed: int) -> str:
    return f"{model}|{scheduler}|p{prompt_index}|s{seed}"


def run(settings: InferenceSettings, out_dir: Path, study: ModelsStudy) -> dict:
    from inference.models import pick_device

    clip = load_clip(settings, pick_device(settings.device))
    config = {**study.__dict__, "preset": settings.models, "clip": clip.name}
    store = rep.ResultStore(out_dir, "models", config)
    seeds = [study.seed + i for i in range(study.n)]
    total = len(study.models) * len(study.schedulers) * len(study.prompts) * len(seeds)
    with tqdm(total=total, desc="models study", unit="img") as bar:
        for model in study.models:
            keys = [
                unit_key(model, s, p, seed)
                for s in study.schedulers
                for p in range(len(study.prompts))
                for seed in seeds
            ]
            if all(store.has(k) for k in keys):
                bar.update(len(keys))
                continue
            pipe, device = _load_pipe(settings, model)
            base_config = pipe.scheduler.config
            size = pipe.unet.config.sample_size * pipe.vae_scale_factor
            for sched in study.schedulers:
                pipe.scheduler = _scheduler(sched, base_config)
                for p, prompt in enumerate(study.prompts):
                    for seed in seeds:
                        key = unit_key(model, sched, p, seed)
                        if not store.has(key):
                            store.put(
                                key,
                                _generate_one(
                                    store, key, pipe, device, clip, study, prompt, seed, size, model, sched
                                ),
                            )
                        bar.update(1)
            del pipe
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    summary = summarize(store, study)
    store.set_summary(summary)
    write_report(store, study, summary)
    return summary


def _generate_one(store, key, pipe, device, clip, study, prompt, seed, size, model, sched) -> dict:
    generator = torch.Generator("cpu").manual_seed(seed)  # CPU noise: the same image on any device
    start = time.perf_counter()
    image = pipe(
        prompt,
        num_inference_steps=study.steps,
        guidance_scale=study.guidance,
        height=size,
        width=size,
        generator=generator,
    ).images[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    path = store.image_path(key)
    image.save(path)
    cosine = clip_text_image_cosine(clip, [image], [prompt])[0]
    return {
        "model": model,
        "scheduler": sched,
        "prompt": prompt,
        "seed": seed,
        "clip_score": clip_score_from_cosine(cosine),
        "clip_cosine": cosine,
        "seconds": seconds,
        "image": str(path.relative_to(store.dir)),
    }


def summarize(store: rep.ResultStore, study: ModelsStudy) -> dict:
    cells = {}
    for model in study.models:
        for sched in study.schedulers:
            units = [u for u in store.units.values() if u["model"] == model and u["scheduler"] == sched]
            if not units:
                continue
            best = max(units, key=lambda u: u["clip_score"])
            secs = sorted(u["seconds"] for u in units)
            cells[f"{model}|{sched}"] = {
                "model": model,
                "scheduler": sched,
                "clip_score": rep.stats([u["clip_score"] for u in units]),
                "seconds_per_image_median": secs[len(secs) // 2],
                "best_image": best["image"],
                "best_clip_score": best["clip_score"],
            }
    return {"cells": cells}


def write_report(store: rep.ResultStore, study: ModelsStudy, summary: dict) -> None:
    cells = summary["cells"]
    clip_name = store.data["config"]["clip"]
    rows = [
        [
            c["model"],
            c["scheduler"],
            c["clip_score"]["mean"],
            c["clip_score"]["std"],
            c["clip_score"]["min"],
            c["clip_score"]["max"],
            c["clip_score"]["n"],
            c["seconds_per_image_median"],
        ]
        for c in cells.values()
    ]
    table = rep.md_table(
        ["model", "scheduler", "CLIP score", "std", "min", "max", "images", "s/image (median)"],
        rows,
        digits=2,
    )
    # one bar group per model, one bar per scheduler
    series = {
        s: [cells.get(f"{m}|{s}", {}).get("clip_score", {}).get("mean", float("nan")) for m in study.models]
        for s in study.schedulers
    }
    errors = {
        s: [cells.get(f"{m}|{s}", {}).get("clip_score", {}).get("std", 0.0) for m in study.models]
        for s in study.schedulers
    }
    short = [m.split("/")[-1] for m in study.models]
    rep.bar_chart(
        store.dir / "clip_scores.png",
        short,
        series,
        errors=errors,
        title=f"CLIP score by model and scheduler ({clip_name})",
        ylabel="CLIP score (100 × cos)",
    )
    grid = [
        [
            (
                store.dir / cells[f"{m}|{s}"]["best_image"] if f"{m}|{s}" in cells else None,
                f"{cells[f'{m}|{s}']['best_clip_score']:.1f}" if f"{m}|{s}" in cells else "",
            )
            for s in study.schedulers
        ]
        for m in study.models
    ]
    rep.contact_sheet(
        store.dir / "best_per_cell.png",
        short,
        study.schedulers,
        grid,
        title="best image per cell (CLIP score)",
    )
    config = store.data["config"]
    rep.write_markdown(
        store.dir / "report.md",
        "Models × schedulers: CLIP score",
        [
            f"CLIP score = 100 × max(cos(prompt, image), 0) with `{clip_name}` (torchmetrics' CLIPScore scale). "
            f"{len(study.prompts)} prompts × {study.n} seeds per cell, {config['steps']} steps, guidance "
            f"{config['guidance']}, preset `{config['preset']}`. Seconds per image: median, including "
            "text encoding and VAE decoding.",
            "## CLIP score per cell\n\n" + table,
            "![CLIP score by model and scheduler](clip_scores.png)",
            "## Best image per cell\n\n![best image per cell](best_per_cell.png)",
            "Every number, image by image: `results.json`.",
        ],
    )
