"""Study 1, "style-match": does a stylized photo look like the style it was asked for?

For each photo × style × architecture (img2img with the BLIP caption, or caption → text2img) one picture is
made and judged three ways: BLIP VQA's yes/no to "Is this picture in the style of <description>?"
(yes = 1), CLIP score against "a picture in the style of <description>", and CLIP-I to the source photo
(how much of the person survives). A style's score is the mean over photos.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from contract.styles import STYLES
from inference.eval import report as rep
from inference.eval.metric_models import load_clip
from inference.eval.metrics import (
    clip_image_similarity,
    clip_score_from_cosine,
    clip_text_image_cosine,
    vqa_answers,
    yes_from_answer,
)
from inference.settings import InferenceSettings

ARCHITECTURES: dict[str, str] = {"img2img": "img2img + caption", "text2img": "caption → text2img"}
# `--fast`: each architecture again on fast mode's few-step schedule, as a column of its own beside it.
FAST = "-fast"
ARCHITECTURES.update({f"{a}{FAST}": f"{label}, fast mode" for a, label in list(ARCHITECTURES.items())})
# The album's third architecture (issue 11): img2img held to the photo's Canny edges by the ControlNet
# (the normal schedule only: the ControlNet pipeline does not run fast mode's LoRA UNet).
ARCHITECTURES["controlnet"] = "img2img + ControlNet edges"

# What the judge is asked about: the artist for the album's four, a plain description for the rest.
DESCRIPTIONS: dict[str, str] = {
    "vangogh": "Vincent van Gogh",
    "banksy": "Banksy",
    "delaunay": "Robert Delaunay",
    "malevich": "Kazimir Malevich",
    "disneyland": "a Disneyland photo",
    "joy": "a joyful portrait",
    "sadness": "a sad portrait",
    "panda": "a person in a panda mask",
}


def description(style_id: str) -> str:
    return DESCRIPTIONS.get(style_id) or STYLES[style_id].name_en


def question(style_id: str) -> str:
    return f"Is this picture in the style of {description(style_id)}?"


def clip_text(style_id: str) -> str:
    return f"a picture in the style of {description(style_id)}"


@dataclass
class StyleMatchStudy:
    styles: list[str]
    architectures: list[str]
    steps: int = 30
    seed: int = 0
    photos_dir: str | None = None  # None: scikit-image's bundled photos. Units are keyed by photo name,
    # so the folder is part of the configuration: another folder with the same names starts over.


def unit_key(photo: str, style: str, arch: str) -> str:
    return f"{photo}|{style}|{arch}"


def run(
    settings: InferenceSettings, out_dir: Path, study: StyleMatchStudy, photos: list[tuple[str, Image.Image]]
) -> dict:
    from inference.control import stylize_with_edges
    from inference.models import load_models, model_id
    from inference.stylize import stylize

    models = load_models(settings, roles=("base", "caption", "vqa"))
    vqa_processor, vqa_model = models.vqa()
    clip = load_clip(settings, models.device)
    config = {
        **study.__dict__,
        "preset": settings.models,
        "base": models.base_id,
        "vqa": model_id(settings, "vqa"),
        "clip": clip.name,
        # The photos are part of the run: a rerun on fewer (--limit) or other photos starts afresh rather
        # than averaging in the old run's units.
        "photos": [name for name, _ in photos],
    }
    store = rep.ResultStore(out_dir, "style-match", config)
    total = len(photos) * len(study.styles) * len(study.architectures)
    with tqdm(total=total, desc="style-match", unit="img") as bar:
        for name, photo in photos:
            caption = _caption(store, models, name, photo)
            for style in study.styles:
                for arch in study.architectures:
                    key = unit_key(name, style, arch)
                    if not store.has(key):
                        start = time.perf_counter()
                        paint = stylize_with_edges if arch == "controlnet" else stylize
                        result = paint(
                            models,
                            photo,
                            styles=[style],
                            variants=1,
                            seed=study.seed,
                            steps=study.steps,
                            mode=arch.removesuffix(FAST),
                            caption=caption,
                            fast=arch.endswith(FAST),
                        )
                        image = result.images[0][1]
                        seconds = time.perf_counter() - start
                        store.put(
                            key,
                            _judge(
                                store,
                                key,
                                name,
                                style,
                                arch,
                                caption,
                                image,
                                photo,
                                seconds,
                                clip,
                                vqa_processor,
                                vqa_model,
                            ),
                        )
                    bar.update(1)
    summary = summarize(store, study)
    store.set_summary(summary)
    write_report(store, study, summary)
    return summary


def _caption(store: rep.ResultStore, models, name: str, photo: Image.Image) -> str:
    key = f"caption|{name}"
    if not store.has(key):
        store.put(key, {"kind": "caption", "photo": name, "caption": models.captioner.caption([photo])[0]})
    return store.units[key]["caption"]


def _judge(
    store, key, name, style, arch, caption, image, photo, seconds, clip, vqa_processor, vqa_model
) -> dict:
    path = store.image_path(key)
    image.save(path)
    answer = vqa_answers(vqa_processor, vqa_model, [image], question(style))[0]
    cosine = clip_text_image_cosine(clip, [image], [clip_text(style)])[0]
    return {
        "kind": "image",
        "photo": name,
        "style": style,
        "arch": arch,
        "caption": caption,
        "question": question(style),
        "answer": answer,
        "yes": yes_from_answer(answer),
        "clip_style_score": clip_score_from_cosine(cosine),
        "clip_style_cosine": cosine,
        "clip_photo": clip_image_similarity(clip, [image], [photo])[0],
        "seconds": seconds,
        "image": str(path.relative_to(store.dir)),
    }


def summarize(store: rep.ResultStore, study: StyleMatchStudy) -> dict:
    cells = {}
    for style in study.styles:
        for arch in study.architectures:
            units = [
                u
                for u in store.units.values()
                if u.get("kind") == "image" and u["style"] == style and u["arch"] == arch
            ]
            if units:
                cells[f"{style}|{arch}"] = {
                    "style": style,
                    "arch": arch,
                    "vqa_score": rep.stats([1.0 if u["yes"] else 0.0 for u in units])["mean"],
                    "yes": sum(u["yes"] for u in units),
                    "n": len(units),
                    "clip_style_score": rep.stats([u["clip_style_score"] for u in units]),
                    "clip_photo": rep.stats([u["clip_photo"] for u in units]),
                    "seconds": rep.stats([u["seconds"] for u in units])["mean"],  # the fast trade's price
                }
    return {"cells": cells}


def write_report(store: rep.ResultStore, study: StyleMatchStudy, summary: dict) -> None:
    cells = summary["cells"]
    config = store.data["config"]
    sections = [
        f"Base `{config['base']}` (preset `{config['preset']}`), {config['steps']} steps, seed {config['seed']}. "
        f'VQA: BLIP `{config["vqa"]}` asked "Is this picture in the style of <description>?", yes = 1, '
        f"a style's score is the mean over photos. CLIP (`{config['clip']}`): score = 100 × max(cos, 0) against "
        '"a picture in the style of <description>"; CLIP-I photo = cosine to the source photo '
        "(how much of the person survives).",
    ]
    for arch in study.architectures:
        rows = []
        for style in study.styles:
            c = cells.get(f"{style}|{arch}")
            if c:
                rows.append(
                    [
                        style,
                        description(style),
                        c["vqa_score"],
                        f"{c['yes']}/{c['n']}",
                        c["clip_style_score"]["mean"],
                        c["clip_photo"]["mean"],
                        c.get("seconds", float("nan")),
                    ]
                )
        headers = ["style", "asked about", "VQA style match", "yes", "CLIP style score", "CLIP-I to photo"]
        table = rep.md_table([*headers, "s / picture"], rows)
        sections.append(f"## {ARCHITECTURES[arch]}\n\n{table}")
    side = [
        [style] + [cells.get(f"{style}|{a}", {}).get("vqa_score", float("nan")) for a in study.architectures]
        for style in study.styles
    ]
    sections.append(
        "## Side by side: VQA style match\n\n"
        + rep.md_table(["style"] + [ARCHITECTURES[a] for a in study.architectures], side)
    )

    def series(field: str, stat: str | None = None) -> dict[str, list[float]]:
        out = {}
        for a in study.architectures:
            vals = []
            for s in study.styles:
                v = cells.get(f"{s}|{a}", {}).get(field, float("nan"))
                vals.append(v[stat] if stat and isinstance(v, dict) else v)
            out[ARCHITECTURES[a]] = vals
        return out

    rep.bar_chart(
        store.dir / "vqa_style_match.png",
        study.styles,
        series("vqa_score"),
        title="VQA style match (share of 'yes')",
        ylabel="score",
        ylim=(0, 1),
    )
    rep.bar_chart(
        store.dir / "clip_style.png",
        study.styles,
        series("clip_style_score", "mean"),
        title=f"CLIP score to the style description ({config['clip']})",
        ylabel="CLIP score",
    )
    rep.bar_chart(
        store.dir / "clip_photo.png",
        study.styles,
        series("clip_photo", "mean"),
        title="CLIP-I to the source photo",
        ylabel="cosine",
        ylim=(-1, 1),
    )
    sections += [
        "![VQA style match](vqa_style_match.png)",
        "![CLIP score to the style](clip_style.png)",
        "![CLIP-I to the photo](clip_photo.png)",
    ]
    photos = sample_photos(store.units)
    for arch in study.architectures:
        grid = []
        for p in photos:
            row = []
            for s in study.styles:
                u = store.units.get(unit_key(p, s, arch))
                row.append((store.dir / u["image"], "yes" if u["yes"] else "no") if u else (None, ""))
            grid.append(row)
        if grid:
            rep.contact_sheet(
                store.dir / f"samples_{arch}.png",
                photos,
                study.styles,
                grid,
                title=f"{ARCHITECTURES[arch]} (VQA answer under each)",
            )
            sections.append(f"![{ARCHITECTURES[arch]} samples](samples_{arch}.png)")
    sections.append("Every number, photo by photo, with the VQA model's own answer: `results.json`.")
    rep.write_markdown(
        store.dir / "report.md",
        "Style match: VQA, CLIP, identity",
        sections,
        warning=rep.random_weights_warning(config["preset"]),
    )


def sample_photos(units: dict[str, dict]) -> list[str]:
    """Every photo of the run, in run order: the samples sheets show them all (they once stopped at 4,
    which silently dropped the fifth of the five default photos)."""
    return list(dict.fromkeys(u["photo"] for u in units.values() if u.get("kind") == "image"))
