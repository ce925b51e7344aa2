"""The evaluation studies (issue #5) on the tiny twins: metrics on known answers, each study end to end
through the CLI, numbers in range and repeatable, and a resumed run equal to a straight one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("torch")


# ---- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def eval_env(tiny_settings, monkeypatch):
    """The CLI reads its settings from the environment: point it at the session's tiny models."""
    for key in [k for k in os.environ if k.startswith("MODEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("MODELS", "tiny")
    monkeypatch.setenv("DEVICE", "cpu")
    return tiny_settings


def run_cli(*argv: str) -> None:
    from inference.__main__ import main

    assert main(["eval", *argv]) == 0


def results(report_dir: Path, study: str) -> dict:
    return json.loads((report_dir / study / "results.json").read_text())


def without_timings(value):
    """Every number but wall-clock ones, which differ run to run by nature."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_report(report_dir: Path, study: str, headings: list[str], pngs: list[str]) -> str:
    text = (report_dir / study / "report.md").read_text()
    for heading in headings:
        assert heading in text
    for name in pngs:
        assert f"({name})" in text
        with Image.open(report_dir / study / name) as im:
            im.load()
            assert im.width > 100 and im.height > 100
    return text


def truncate_units(report_dir: Path, study: str, keep: int) -> None:
    """Simulate an interruption: keep the first `keep` finished units, as if killed right after them."""
    path = report_dir / study / "results.json"
    data = json.loads(path.read_text())
    data["units"] = dict(list(data["units"].items())[:keep])
    data["summary"] = {}
    path.write_text(json.dumps(data))


# ---- metrics on known answers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def judges(tiny_settings):
    from inference.eval.metric_models import load_clip, load_dino

    return load_clip(tiny_settings), load_dino(tiny_settings)


@pytest.fixture(scope="module")
def pictures():
    from inference.eval.photos import default_photos

    return [im for _, im in default_photos(3)]


def test_an_image_against_itself_scores_one(judges, pictures):
    from inference.eval.metrics import clip_image_similarity, dino_similarity

    clip, dino = judges
    for sims in (clip_image_similarity(clip, pictures, pictures), dino_similarity(dino, pictures, pictures)):
        assert sims == pytest.approx([1.0] * len(pictures), abs=1e-5)
    # and two different photos are less alike than a photo and itself
    assert clip_image_similarity(clip, pictures[:1], pictures[1:2])[0] < 1 - 1e-4
    assert dino_similarity(dino, pictures[:1], pictures[1:2])[0] < 1 - 1e-4


def test_clip_score_is_100_times_the_clipped_cosine(judges, pictures):
    from inference.eval.metrics import clip_text_image_cosine, clip_text_image_score

    clip, _ = judges
    texts = ["an astronaut", "a cat " * 200, ""]  # the long one is cut at 77 tokens, not an error
    cosines = clip_text_image_cosine(clip, pictures, texts)
    scores = clip_text_image_score(clip, pictures, texts)
    assert all(-1 <= c <= 1 for c in cosines)
    assert scores == pytest.approx([100 * max(c, 0) for c in cosines])
    assert all(0 <= s <= 100 for s in scores)


def test_mean_similarity_to_set_leaves_out_self_pairs(judges, pictures):
    from inference.eval.metrics import dino_embeds, mean_similarity_to_set

    _, dino = judges
    emb = dino_embeds(dino, pictures)
    within = mean_similarity_to_set(emb, emb, exclude_self=True)
    full = (emb @ emb.T).sum(1)
    assert within == pytest.approx([float((full[i] - 1) / 2) for i in range(3)], abs=1e-5)
    assert mean_similarity_to_set(emb[:1], emb[:1], exclude_self=True) == []


def test_vqa_yes_reads_the_answer(tiny_settings, pictures):
    from inference.eval.metrics import vqa_answers, vqa_yes, yes_from_answer
    from inference.models import load_models

    assert [yes_from_answer(a) for a in ("yes", "Yes.", " yes it is", "no", "yesterday", "")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    processor, model = load_models(tiny_settings, roles=("base",)).vqa()
    answers = vqa_answers(processor, model, pictures, "Is this picture in the style of Banksy?")
    assert vqa_yes(processor, model, pictures, "Is this picture in the style of Banksy?") == [
        yes_from_answer(a) for a in answers
    ]


# ---- models study ---------------------------------------------------------------------------------

MODELS_ARGS = ("models", "--limit", "1", "--n", "2", "--steps", "2", "--schedulers", "euler", "dpm++2m")


def test_models_study_end_to_end_repeatable_and_resumable(eval_env, tmp_path):
    straight, again, resumed = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_cli(*MODELS_ARGS, "--report-dir", str(straight))
    data = results(straight, "models")
    assert len(data["units"]) == 2 * 2 * 1 * 2  # tiny + tiny-seed1, 2 schedulers, 1 prompt, 2 seeds
    for unit in data["units"].values():
        assert 0 <= unit["clip_score"] <= 100 and -1 <= unit["clip_cosine"] <= 1
        assert unit["clip_score"] == pytest.approx(100 * max(unit["clip_cosine"], 0))
        assert unit["seconds"] > 0
    assert set(data["summary"]["cells"]) == {
        f"{m}|{s}" for m in ("tiny", "tiny-seed1") for s in ("euler", "dpm++2m")
    }
    # the two tiny bases really are different models
    cos = {u["model"]: u["clip_cosine"] for u in data["units"].values() if u["scheduler"] == "euler"}
    assert cos["tiny"] != cos["tiny-seed1"]
    text = assert_report(
        straight,
        "models",
        ["## CLIP score per cell", "| tiny-seed1 | dpm++2m |"],
        ["clip_scores.png", "best_per_cell.png"],
    )
    assert "CLIP score" in text and "clip" in text

    run_cli(*MODELS_ARGS, "--report-dir", str(again))
    assert without_timings(results(again, "models")) == without_timings(data)

    run_cli(*MODELS_ARGS, "--report-dir", str(resumed))
    truncate_units(resumed, "models", keep=3)
    run_cli(*MODELS_ARGS, "--report-dir", str(resumed))
    assert without_timings(results(resumed, "models")) == without_timings(data)
