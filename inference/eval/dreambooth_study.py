"""Study 3, "dreambooth": subject fidelity of personal LoRAs at several ranks, as in the DreamBooth paper.

Per rank: train a LoRA on the subject's photos (time and file size recorded), then generate N seeds for
each prompt and measure, per image, DINO (ViT-S/16 CLS cosine) and CLIP-I (CLIP image cosine) averaged
over the real photos, and CLIP-T (cosine of the image to the prompt without the identifier token).
A "base model, no LoRA" row and a "real photos vs each other" row frame the numbers; the paper's SD
numbers are printed beside ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from contract.kinds import DEFAULT_TOKEN
from inference.eval import report as rep
from inference.eval.metric_models import load_clip, load_dino
from inference.eval.metrics import (
    clip_image_embeds,
    clip_text_image_cosine,
    dino_embeds,
    mean_similarity_to_set,
)
from inference.settings import InferenceSettings
from inference.train import adapters

# DreamBench (Ruiz et al. 2023), the 25 prompt templates for live subjects: {0} = token, {1} = class.
DREAMBENCH_LIVE: list[str] = [
    "a {0} {1} in the jungle",
    "a {0} {1} in the snow",
    "a {0} {1} on the beach",
    "a {0} {1} on a cobblestone street",
    "a {0} {1} on top of pink fabric",
    "a {0} {1} on top of a wooden floor",
    "a {0} {1} with a city in the background",
    "a {0} {1} with a mountain in the background",
    "a {0} {1} with a blue house in the background",
    "a {0} {1} on top of a purple rug in a forest",
    "a {0} {1} wearing a red hat",
    "a {0} {1} wearing a santa hat",
    "a {0} {1} wearing a rainbow scarf",
    "a {0} {1} wearing a black top hat and a monocle",
    "a {0} {1} in a chef outfit",
    "a {0} {1} in a firefighter outfit",
    "a {0} {1} in a police outfit",
    "a {0} {1} wearing pink glasses",
    "a {0} {1} wearing a yellow shirt",
    "a {0} {1} in a purple wizard outfit",
    "a red {0} {1}",
    "a purple {0} {1}",
    "a shiny {0} {1}",
    "a wet {0} {1}",
    "a cube shaped {0} {1}",
]

# DreamBooth paper (arXiv 2208.12242), Table 1: Stable Diffusion, and the real-image ceiling.
PAPER = {
    "DreamBooth (SD), paper": {"dino": 0.668, "clip_i": 0.803, "clip_t": 0.305},
    "real images, paper": {"dino": 0.774, "clip_i": 0.885, "clip_t": None},
}
BASELINE = "base"  # the unit prefix for the base model without a LoRA


@dataclass
class DreamBoothStudy:
    ranks: list[int]
    prompts: list[str]  # templates with {0} = token, {1} = class
    token: str = DEFAULT_TOKEN
    class_name: str = "person"
    train_steps: int | None = None  # None: TrainConfig's default
    n: int = 4
    steps: int = 30
    seed: int = 0
    guidance: float = 7.5
    baseline: bool = True
    photos_dir: str | None = None  # part of the configuration: another subject starts over


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def variants(study: DreamBoothStudy) -> list[str]:
    return ([BASELINE] if study.baseline else []) + [f"r{r}" for r in study.ranks]


def run(
    settings: InferenceSettings, out_dir: Path, study: DreamBoothStudy, photos: list[tuple[str, Image.Image]]
) -> dict:
    from inference.models import load_models

    models = load_models(settings, roles=("base",))
    clip = load_clip(settings, models.device)
    dino = load_dino(settings, models.device)
    config = {
        **study.__dict__,
        "preset": settings.models,
        "base": models.base_id,
        "clip": clip.name,
        "dino": dino.name,
        "photos": [name for name, _ in photos],
    }
    store = rep.ResultStore(out_dir, "dreambooth", config)
    real = [im for _, im in photos]
    real_clip, real_dino = clip_image_embeds(clip, real), dino_embeds(dino, real)
    if not store.has("real"):
        store.put(
            "real",
            {
                "kind": "real",
                "dino": rep.stats(mean_similarity_to_set(real_dino, real_dino, exclude_self=True))["mean"],
                "clip_i": rep.stats(mean_similarity_to_set(real_clip, real_clip, exclude_self=True))["mean"],
            },
        )
    seeds = [study.seed + i for i in range(study.n)]
    pipe = models.txt2img
    size = models.resolution
    total = len(variants(study)) * len(study.prompts) * len(seeds)
    with tqdm(total=total, desc="dreambooth", unit="img") as bar:
        for variant in variants(study):
            keys = [(p, s, f"{variant}|p{p}|s{s}") for p in range(len(study.prompts)) for s in seeds]
            lora = None if variant == BASELINE else _trained_lora(store, models, photos, study, variant)
            if all(store.has(k) for *_, k in keys):
                bar.update(len(keys))
                continue
            if lora is not None:
                pipe.load_lora_weights(str(lora), adapter_name=variant)
                # Training leaves LoRA layers disabled in the shared models (so nothing leaks into other
                # jobs); a freshly loaded adapter would stay off with them. Switch on exactly this one.
                for component in (pipe.unet, pipe.text_encoder):
                    if adapters.has_adapter(adapters.unwrap(component), variant):
                        adapters.activate(adapters.unwrap(component), variant)
            try:
                for p, seed, key in keys:
                    if not store.has(key):
                        prompt = _plain(study.prompts[p].format(study.token, study.class_name))
                        generator = torch.Generator("cpu").manual_seed(seed)
                        image = pipe(
                            prompt,
                            num_inference_steps=study.steps,
                            guidance_scale=study.guidance,
                            height=size,
                            width=size,
                            generator=generator,
                        ).images[0]
                        store.put(
                            key,
                            _judge(
                                store,
                                key,
                                variant,
                                p,
                                seed,
                                prompt,
                                image,
                                study,
                                clip,
                                dino,
                                real_clip,
                                real_dino,
                            ),
                        )
                    bar.update(1)
            finally:
                if lora is not None:
                    pipe.unload_lora_weights()
    summary = summarize(store, study)
    store.set_summary(summary)
    write_report(store, study, summary)
    return summary


def _trained_lora(store: rep.ResultStore, models, photos, study: DreamBoothStudy, variant: str) -> Path:
    """Train the rank's LoRA once; a resumed run reuses the file and its recorded time and size."""
    from inference.train import TrainConfig
    from inference.train.loop import train_lora

    key = f"train|{variant}"
    unit = store.units.get(key)
    if unit and (store.dir / unit["lora"]).is_file():
        return store.dir / unit["lora"]
    rank = int(variant.removeprefix("r"))
    kwargs = {"rank": rank, "token": study.token, "cls": study.class_name, "seed": study.seed}
    if study.train_steps:
        kwargs["steps"] = study.train_steps
    cfg = TrainConfig(**kwargs)
    target = store.dir / "loras" / f"{variant}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    class_cache = Path(models.settings.data_dir) / "class_images"  # shared with the bot's training
    result = train_lora(models, [im for _, im in photos], cfg, out=target, class_cache=class_cache)
    path = Path(result.path)
    store.put(
        key,
        {
            "kind": "train",
            "rank": rank,
            "steps": result.steps,
            "train_seconds": result.train_seconds,  # the optimizer loop alone
            "wall_seconds": result.seconds,  # with class-image generation (first rank only, then cached)
            "loss": result.loss,
            "lora_bytes": path.stat().st_size,
            "lora": str(path.relative_to(store.dir)),
        },
    )
    return path


def _judge(store, key, variant, p, seed, prompt, image, study, clip, dino, real_clip, real_dino) -> dict:
    path = store.image_path(key)
    image.save(path)
    text = _plain(study.prompts[p].format("", study.class_name))  # CLIP-T without the rare token
    return {
        "kind": "image",
        "variant": variant,
        "prompt_index": p,
        "seed": seed,
        "prompt": prompt,
        "dino": mean_similarity_to_set(dino_embeds(dino, [image]), real_dino)[0],
        "clip_i": mean_similarity_to_set(clip_image_embeds(clip, [image]), real_clip)[0],
        "clip_t": clip_text_image_cosine(clip, [image], [text])[0],
        "image": str(path.relative_to(store.dir)),
    }


def summarize(store: rep.ResultStore, study: DreamBoothStudy) -> dict:
    rows = {}
    for variant in variants(study):
        units = [u for u in store.units.values() if u.get("kind") == "image" and u["variant"] == variant]
        if not units:
            continue
        train = store.units.get(f"train|{variant}", {})
        rows[variant] = {
            "variant": variant,
            "dino": rep.stats([u["dino"] for u in units]),
            "clip_i": rep.stats([u["clip_i"] for u in units]),
            "clip_t": rep.stats([u["clip_t"] for u in units]),
            "train_seconds": train.get("train_seconds"),
            "train_loss": train.get("loss"),
            "lora_bytes": train.get("lora_bytes"),
        }
    return {"cells": rows, "real": store.units.get("real"), "paper": PAPER}


def write_report(store: rep.ResultStore, study: DreamBoothStudy, summary: dict) -> None:
    config = store.data["config"]
    rows = []
    for variant, row in summary["cells"].items():
        label = "base model, no LoRA" if variant == BASELINE else f"LoRA rank {variant[1:]}"
        size = f"{row['lora_bytes'] / 2**20:.2f} MB" if row["lora_bytes"] else "—"
        secs = f"{row['train_seconds']:.1f}" if row["train_seconds"] is not None else "—"
        rows.append(
            [
                label,
                row["dino"]["mean"],
                row["clip_i"]["mean"],
                row["clip_t"]["mean"],
                row["dino"]["n"],
                secs,
                size,
            ]
        )
    real = summary["real"] or {}
    rows.append(
        [
            "real photos vs each other (ours)",
            real.get("dino", float("nan")),
            real.get("clip_i", float("nan")),
            "—",
            len(config["photos"]),
            "—",
            "—",
        ]
    )
    for label, ref in PAPER.items():
        rows.append(
            [
                label,
                ref["dino"],
                ref["clip_i"],
                ref["clip_t"] if ref["clip_t"] is not None else "—",
                "—",
                "—",
                "—",
            ]
        )
    table = rep.md_table(["", "DINO", "CLIP-I", "CLIP-T", "images", "train s", "LoRA file"], rows)
    names = list(summary["cells"])
    rep.bar_chart(
        store.dir / "fidelity.png",
        names,
        {
            m.upper().replace("_", "-"): [summary["cells"][v][m]["mean"] for v in names]
            for m in ("dino", "clip_i", "clip_t")
        },
        title="DreamBooth fidelity by LoRA rank",
        ylabel="cosine",
        ylim=(-1, 1),
    )
    shown = list(range(min(6, len(study.prompts))))
    grid = [
        [
            (store.dir / store.units[k]["image"], f"DINO {store.units[k]['dino']:.2f}")
            if (k := f"{v}|p{p}|s{study.seed}") in store.units
            else (None, "")
            for p in shown
        ]
        for v in names
    ]
    if names:
        rep.contact_sheet(
            store.dir / "grid.png",
            names,
            [f"p{p}" for p in shown],
            grid,
            title="first seed per prompt (rows: variants)",
        )
    prompts = "\n".join(
        f"- p{p}: {_plain(study.prompts[p].format(study.token, study.class_name))}"
        for p in range(len(study.prompts))
    )
    rep.write_markdown(
        store.dir / "report.md",
        "DreamBooth LoRA fidelity by rank",
        [
            f"Subject: {len(config['photos'])} photos ({', '.join(config['photos'])}), token `{study.token}`, class "
            f"`{study.class_name}`. Base `{config['base']}` (preset `{config['preset']}`), {study.n} seeds × "
            f"{len(study.prompts)} prompts, {study.steps} steps, guidance {study.guidance}. "
            f"DINO = ViT-S/16 CLS cosine (`{config['dino']}`), CLIP-I = CLIP image cosine, each averaged over the "
            f"real photos; CLIP-T = cosine to the prompt without the token (`{config['clip']}`).",
            "## Fidelity\n\n" + table,
            "![fidelity by rank](fidelity.png)",
            "## Samples\n\n![grid](grid.png)",
            "## Prompts\n\n" + prompts,
            "Every number, image by image: `results.json`.",
        ],
        warning=rep.random_weights_warning(config["preset"]),
    )
