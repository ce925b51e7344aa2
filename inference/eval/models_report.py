"""The models study's report.md, bar chart and contact sheet, built from results.json alone (so a resumed
run reports exactly what a straight one does)."""

from __future__ import annotations

from inference.eval import report as rep
from inference.eval.generators import NO_SCHEDULER
from inference.eval.model_specs import parse_model_spec

GAN_COLUMN = "— (GAN: no scheduler)"
SCALES = (
    "Two scales of one number: **cos** is the plain cosine between CLIP's embeddings of the prompt and of "
    "the picture (the original study's scale); **CLIP score** = 100 × max(cos, 0) (torchmetrics' `CLIPScore` "
    "scale)."
)


def write_report(store: rep.ResultStore, study, summary: dict) -> None:
    cells, config = summary["cells"], store.data["config"]
    specs = [parse_model_spec(m) for m in study.models]
    columns = list(study.schedulers) + ([NO_SCHEDULER] if any(not s.uses_scheduler for s in specs) else [])
    titles = {c: GAN_COLUMN if c == NO_SCHEDULER else c for c in columns}
    labels = [s.label for s in specs]
    sections = [
        _intro(config, study),
        "## CLIP score per cell\n\n" + _cell_table(cells),
        "## Beside the original study\n\n" + _original_table(summary["original"], study.prompts),
    ]
    if any(s.family == "biggan" for s in specs):
        sections.append(_class_section(store, study))
    rep.bar_chart(
        store.dir / "clip_scores.png",
        labels,
        {titles[c]: [_get(cells, s.text, c, "clip_score", "mean") for s in specs] for c in columns},
        errors={
            titles[c]: [_get(cells, s.text, c, "clip_score", "std", 0.0) for s in specs] for c in columns
        },
        title=f"CLIP score by model and scheduler ({config['clip']})",
        ylabel="CLIP score (100 × cos)",
    )
    rep.contact_sheet(
        store.dir / "best_per_cell.png",
        labels,
        list(titles.values()),
        [[_sheet_cell(store, cells.get(f"{s.text}|{c}")) for c in columns] for s in specs],
        title="best image per cell (CLIP score · seconds per image)",
    )
    sections += [
        "![CLIP score by model and scheduler](clip_scores.png)",
        "## Best image per cell\n\n![best image per cell](best_per_cell.png)",
        "Every number, image by image: `results.json`.",
    ]
    # Only `tiny` makes this study's generators random: under sd15-random it runs the models it is given.
    warning = rep.random_weights_warning(config["preset"]) if config["preset"] == "tiny" else ""
    rep.write_markdown(store.dir / "report.md", "Models × schedulers: CLIP score", sections, warning=warning)


def _intro(config: dict, study) -> str:
    prompts = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(study.prompts))
    return (
        f"{SCALES} CLIP model: `{config['clip']}`. {len(study.prompts)} prompts × {study.n} seeds per cell, "
        f"{config['steps']} steps, guidance {config['guidance']}, BigGAN truncation {config['truncation']}, "
        f"preset `{config['preset']}`. Seconds per image: the median per cell, text encoding and VAE decoding "
        f"included (a GAN: one forward pass); the first picture of each model includes warm-up.\n\n"
        f"Prompts:\n\n{prompts}"
    )


def _cell_table(cells: dict) -> str:
    rows = [
        [
            c["model"],
            c["scheduler"] if c["scheduler"] != NO_SCHEDULER else GAN_COLUMN,
            c["clip_score"]["mean"],
            f"{c['clip_cosine']['mean']:.4f}",
            c["clip_score"]["std"],
            c["clip_score"]["min"],
            c["clip_score"]["max"],
            c["clip_score"]["n"],
            f"{c['seconds_per_image_median']:.3g}",
        ]
        for c in cells.values()
    ]
    headers = ["model", "scheduler", "CLIP score (100×cos)", "cos (plain)", "std", "min", "max", "images"]
    return rep.md_table([*headers, "s/image (median)"], rows, digits=2)


def _original_table(rows: list[dict], prompts: list[str]) -> str:
    def scaled(cosine: float | None, scale: float, digits: int) -> str:
        return "not run" if cosine is None else f"{scale * cosine:.{digits}f}"

    table = rep.md_table(
        ["model", "scheduler", "prompt", "original cos", "ours cos", "original 100×cos", "ours 100×cos"],
        [
            [
                r["model"],
                r["scheduler"],
                prompts.index(r["prompt"]) + 1 if r["prompt"] in prompts else r["prompt"][:40] + "…",
                scaled(r["original_cosine"], 1, 4),
                scaled(r["ours_cosine"], 1, 4),
                scaled(r["original_cosine"], 100, 2),
                scaled(r["ours_cosine"], 100, 2),
            ]
            for r in rows
        ],
    )
    return (
        "The original study recorded its CLIP figures as the plain cosine; its CLIP model was not recorded, "
        "so read the comparison as a check of scale, not a match to the third decimal. Ours: the mean cosine "
        f"over this run's seeds for the same model, scheduler and prompt.\n\n{table}"
    )


def _class_section(store: rep.ResultStore, study) -> str:
    rows = []
    for p in range(len(study.prompts)):
        u = store.units.get(f"imagenet|p{p}")
        if u:
            rows.append([p + 1, u["class_index"], u["class_name"], f"{u['cosine']:.4f}"])
    table = rep.md_table(["prompt", "ImageNet class", "name", "CLIP text cos"], rows)
    return (
        "## BigGAN: the ImageNet class each prompt became\n\nBigGAN draws one of the 1000 ImageNet classes, so "
        'each prompt became the class whose CLIP text embedding of "a photo of a <name>" is nearest to the '
        f"prompt's; its pictures are then scored against the full prompt. Truncation {study.truncation}.\n\n"
        + table
    )


def _sheet_cell(store: rep.ResultStore, cell: dict | None) -> tuple:
    if not cell:
        return (None, "")
    caption = f"{cell['best_clip_score']:.1f} · {cell['seconds_per_image_median']:.3g} s"
    if cell["scheduler"] == NO_SCHEDULER:  # a GAN: name the class it drew
        classes = [u for u in store.units.values() if u.get("kind") == "imagenet_class"]
        caption += "".join(f" · {u['class_name']}" for u in classes if u["prompt"] == cell["best_prompt"])
    return (store.dir / cell["best_image"], caption)


def _get(
    cells: dict, model: str, column: str, metric: str, stat: str, default: float = float("nan")
) -> float:
    return cells.get(f"{model}|{column}", {}).get(metric, {}).get(stat, default)
