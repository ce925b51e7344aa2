"""Results store (resumable JSON), markdown tables, and charts (matplotlib, Agg backend).

A study is a list of keyed units of work (photo×style×arch, cell×prompt×seed, rank×prompt). Each unit's
numbers go into results.json the moment it completes (atomic rewrite); a rerun skips the keys already
there. The report is built from the JSON alone, so a resumed run reports exactly what a straight one does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)


class ResultStore:
    """results.json: {"study", "config", "units": {key: record}, "summary"}.

    `config` holds what changes a unit's numbers (models, steps, seed…); a different config starts over
    (the old file is kept as results.stale.json) rather than mixing two experiments in one table.
    """

    def __init__(self, out_dir: Path, study: str, config: dict) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "results.json"
        config = json.loads(json.dumps(config))  # normalise tuples etc. so the comparison is fair
        self.data: dict = {"study": study, "config": config, "units": {}, "summary": {}}
        if self.path.is_file():
            old = json.loads(self.path.read_text(encoding="utf-8"))
            if old.get("study") == study and old.get("config") == config:
                self.data["units"] = old.get("units", {})
                log.info("resuming %s: %d units already done", study, len(self.data["units"]))
            else:
                os.replace(self.path, self.dir / "results.stale.json")
                log.warning("config changed: previous results kept as results.stale.json, starting over")

    @property
    def units(self) -> dict[str, dict]:
        return self.data["units"]

    def has(self, key: str) -> bool:
        return key in self.units

    def put(self, key: str, record: dict) -> None:
        self.units[key] = record
        self.save()

    def set_summary(self, summary: dict) -> None:
        self.data["summary"] = summary
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

    def image_path(self, key: str) -> Path:
        """Where a unit's picture lives: images/<key made filename-safe>.png."""
        (self.dir / "images").mkdir(exist_ok=True)
        return self.dir / "images" / (re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") + ".png")


# ---- numbers -------------------------------------------------------------------------------------


def stats(values: Sequence[float]) -> dict[str, float]:
    """mean, std (sample; 0 for one value), min, max, n."""
    vals = [float(v) for v in values]
    if not vals:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


def fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 3) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# Presets whose generators are random weights built in code (inference/tiny.py): their pictures are noise.
RANDOM_WEIGHT_PRESETS = ("tiny", "sd15-random")


def random_weights_warning(preset: str) -> str:
    """The line a report opens with when its pictures come from random weights ('' otherwise)."""
    if preset not in RANDOM_WEIGHT_PRESETS:
        return ""
    which = (
        "every model here, the judges (CLIP, DINO, BLIP) included, has"
        if preset == "tiny"
        else "the generators and BLIP have"
    )
    real = "" if preset == "tiny" else " (CLIP and DINO are the real ones)"
    return (
        f"> **Random weights: these numbers are meaningless.** Under preset `{preset}` {which} random "
        f"weights, built in code and never trained{real}. The pictures are noise: the run tests the plumbing "
        "and the timings, not the models. Rerun with `MODELS=sd15` for numbers that mean something."
    )


def write_markdown(path: Path, title: str, sections: Sequence[str], *, warning: str = "") -> None:
    """report.md: the title, then `warning` (if any) above everything else, then the sections."""
    parts = [warning, *sections] if warning else list(sections)
    path.write_text(f"# {title}\n\n" + "\n\n".join(s.strip() for s in parts) + "\n", encoding="utf-8")


# ---- pictures ------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on GPU hosts or in CI
    import matplotlib.pyplot as plt

    return plt


def bar_chart(
    path: Path,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    errors: dict[str, Sequence[float]] | None = None,
) -> None:
    """Grouped bars: one group per x label, one bar per series (e.g. architecture)."""
    plt = _pyplot()
    n = max(len(series), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.55 * len(groups) * n + 2)), 4.5))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        yerr = list(errors[name]) if errors and name in errors else None
        ax.bar(xs, [0.0 if math.isnan(v) else v for v in values], width, label=name, yerr=yerr, capsize=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def contact_sheet(
    path: Path,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cells: Sequence[Sequence[tuple[Path | None, str]]],
    *,
    title: str,
    thumb: float = 2.2,
) -> None:
    """A grid of images (rows × cols) with a caption under each; a missing image leaves a blank cell."""
    plt = _pyplot()
    rows, cols = len(row_labels), len(col_labels)
    fig, axes = plt.subplots(rows, cols, figsize=(thumb * cols + 1.2, thumb * rows + 0.8), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            image_path, caption = cells[r][c]
            if image_path is not None and Path(image_path).is_file():
                with Image.open(image_path) as im:
                    ax.imshow(im.convert("RGB"))
            ax.set_xlabel(caption, fontsize=7)
            if r == 0:
                ax.set_title(col_labels[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
