"""The evaluation studies (issue #5) on the tiny twins: metrics on known answers, each study end to end
through the CLI, numbers in range and repeatable, and a resumed run equal to a straight one."""

from __future__ import annotations

import json
import os
import shutil
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


def flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k2: v2 for k, v in value.items() for k2, v2 in flatten(v, f"{prefix}/{k}").items()}
    if isinstance(value, list):
        return {k2: v2 for i, v in enumerate(value) for k2, v2 in flatten(v, f"{prefix}/{i}").items()}
    return {prefix: value}


def assert_close_numbers(a: dict, b: dict, rel: float) -> None:
    """Same keys, same strings and booleans, floats equal to `rel`."""
    fa, fb = flatten(without_timings(a)), flatten(without_timings(b))
    assert fa.keys() == fb.keys()
    for key, value in fa.items():
        if isinstance(value, float):
            assert fb[key] == pytest.approx(value, rel=rel, abs=rel), key
        else:
            assert fb[key] == value, key


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


def interrupted_copy(src: Path, dst: Path, study: str, keep: int) -> None:
    """Simulate an interruption: a copy of a finished run that holds only its first `keep` units, as if
    killed right after them (pictures and LoRA files of later units may exist: they are redone)."""
    shutil.copytree(src / study, dst / study)
    path = dst / study / "results.json"
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
TINY_GRID = ("tiny", "tiny-seed1", "sdxl:tiny+tiny-lora", "biggan:tiny")  # the default grid under MODELS=tiny


def test_models_study_end_to_end_repeatable_and_resumable(eval_env, tmp_path):
    """Every model family of the study (SD, SDXL with a LoRA, BigGAN) through the CLI with --limit."""
    straight, again, resumed = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_cli(*MODELS_ARGS, "--report-dir", str(straight))
    data = results(straight, "models")
    images = [u for u in data["units"].values() if u["kind"] == "image"]
    # 3 diffusion models × 2 schedulers × 1 prompt × 2 seeds, and BigGAN's 2 seeds without a scheduler
    assert len(images) == 3 * 2 * 1 * 2 + 2
    for unit in images:
        assert 0 <= unit["clip_score"] <= 100 and -1 <= unit["clip_cosine"] <= 1
        assert unit["clip_score"] == pytest.approx(100 * max(unit["clip_cosine"], 0))
        assert unit["seconds"] > 0
        with Image.open(straight / "models" / unit["image"]) as im:
            assert im.size == ((64, 64) if unit["family"] == "biggan" else (128, 128))
    assert set(data["summary"]["cells"]) == {
        f"{m}|{s}" for m in TINY_GRID[:3] for s in ("euler", "dpm++2m")
    } | {"biggan:tiny|none"}
    # the two tiny SD bases really are different models
    cos = {u["model"]: u["clip_cosine"] for u in images if u["scheduler"] == "euler"}
    assert cos["tiny"] != cos["tiny-seed1"]
    # the prompt became an ImageNet class, shown in the report
    (mapped,) = [u for u in data["units"].values() if u["kind"] == "imagenet_class"]
    text = assert_report(
        straight,
        "models",
        [
            "> **Random weights: these numbers are meaningless.**",
            "## CLIP score per cell",
            "| tiny-seed1 | dpm++2m |",
            "| sdxl:tiny+tiny-lora | euler |",
            "| biggan:tiny | — (GAN: no scheduler) |",
            f"| 1 | {mapped['class_index']} | {mapped['class_name']} |",
            # the original figure, on both scales, though this run did not make its cell
            "| stabilityai/stable-diffusion-2-1-base | euler-a | 1 | 0.3972 | not run | 39.72 | not run |",
        ],
        ["clip_scores.png", "best_per_cell.png"],
    )
    assert text.index("Random weights") < text.index("## CLIP score per cell")

    run_cli(*MODELS_ARGS, "--report-dir", str(again))
    assert without_timings(results(again, "models")) == without_timings(data)

    # interrupted inside the SDXL model's units (the class mapping and 8 images done)
    interrupted_copy(straight, resumed, "models", keep=9)
    run_cli(*MODELS_ARGS, "--report-dir", str(resumed))
    assert without_timings(results(resumed, "models")) == without_timings(data)


# ---- style-match study ----------------------------------------------------------------------------

STYLE_ARGS = ("style-match", "--limit", "1", "--styles", "vangogh", "--steps", "2")


def test_style_match_end_to_end_scores_are_the_vqa_answers(eval_env, tmp_path):
    from inference.eval.metrics import yes_from_answer
    from inference.eval.style_match import question

    straight, resumed = tmp_path / "a", tmp_path / "b"
    run_cli(*STYLE_ARGS, "--report-dir", str(straight))
    data = results(straight, "style-match")
    images = [u for u in data["units"].values() if u["kind"] == "image"]
    assert len(images) == 1 * 1 * 2  # astronaut × 1 style × 2 architectures
    for u in images:
        assert u["yes"] == yes_from_answer(u["answer"]) and u["question"] == question(u["style"])
        assert 0 <= u["clip_style_score"] <= 100 and -1 <= u["clip_photo"] <= 1
        with Image.open(straight / "style-match" / u["image"]) as im:
            assert im.size == (128, 128)
    for cell in data["summary"]["cells"].values():
        answers = [u["yes"] for u in images if u["style"] == cell["style"] and u["arch"] == cell["arch"]]
        assert cell["vqa_score"] == sum(answers) / len(answers)
        assert 0 <= cell["vqa_score"] <= 1
    assert_report(
        straight,
        "style-match",
        [
            "## img2img + caption",
            "## caption → text2img",
            "## Side by side",
            "| vangogh | Vincent van Gogh |",
        ],
        ["vqa_style_match.png", "clip_style.png", "clip_photo.png", "samples_img2img.png"],
    )

    interrupted_copy(straight, resumed, "style-match", keep=2)  # the caption and one picture
    run_cli(*STYLE_ARGS, "--report-dir", str(resumed))
    assert without_timings(results(resumed, "style-match")) == without_timings(data)


# ---- dreambooth study -----------------------------------------------------------------------------


def test_dreambooth_study_end_to_end_and_resumable(eval_env, tmp_path):
    from inference.eval.photos import default_photos

    subject = tmp_path / "subject"
    subject.mkdir()
    for name, im in default_photos(2):
        im.save(subject / f"{name}.png")
    args = (
        "dreambooth",
        "--photos",
        str(subject),
        "--ranks",
        "4",
        "8",
        "--train-steps",
        "2",
        "--limit",
        "1",
        "--n",
        "1",
        "--steps",
        "2",
    )
    straight, resumed = tmp_path / "a", tmp_path / "b"
    run_cli(*args, "--report-dir", str(straight))
    data = results(straight, "dreambooth")
    cells = data["summary"]["cells"]
    assert list(cells) == ["base", "r4", "r8"]
    for name, cell in cells.items():
        for metric in ("dino", "clip_i", "clip_t"):
            assert -1 <= cell[metric]["mean"] <= 1
        if name != "base":
            assert cell["lora_bytes"] > 0 and cell["train_seconds"] > 0
    assert cells["r8"]["lora_bytes"] > cells["r4"]["lora_bytes"]
    assert -1 <= data["units"]["real"]["dino"] <= 1
    text = assert_report(
        straight,
        "dreambooth",
        ["## Fidelity", "LoRA rank 4", "LoRA rank 8", "real photos"],
        ["fidelity.png", "grid.png"],
    )
    assert "| DreamBooth (SD), paper | 0.668 | 0.803 | 0.305 |" in text

    # real, base image, rank-4 LoRA trained (its file is reused); rank 8 is trained again.
    interrupted_copy(straight, resumed, "dreambooth", keep=3)
    run_cli(*args, "--report-dir", str(resumed))
    # Cold and warm class-image caches train on the same (cached, fp16-rounded) latents: exact equality.
    assert_close_numbers(results(resumed, "dreambooth"), data, rel=0)


def test_image_against_itself_in_the_dreambooth_metrics(judges, pictures):
    """A 'generated' image equal to the only real photo scores DINO = CLIP-I = 1."""
    from inference.eval.metrics import clip_image_embeds, dino_embeds, mean_similarity_to_set

    clip, dino = judges
    one = pictures[:1]
    assert mean_similarity_to_set(dino_embeds(dino, one), dino_embeds(dino, one)) == pytest.approx(
        [1.0], abs=1e-5
    )
    assert mean_similarity_to_set(
        clip_image_embeds(clip, one), clip_image_embeds(clip, one)
    ) == pytest.approx([1.0], abs=1e-5)


def test_style_match_score_is_the_mean_of_the_judges_yes_answers(tiny_settings, tmp_path, monkeypatch):
    """A judge whose answers we know (yes, no) gives exactly their mean per style."""
    from inference.eval import style_match
    from inference.eval.photos import default_photos

    calls: list[str] = []

    def scripted_answers(processor, model, images, question):
        calls.append(question)
        return ["yes" if len(calls) % 2 else "no, it is not" for _ in images]

    monkeypatch.setattr(style_match, "vqa_answers", scripted_answers)
    study = style_match.StyleMatchStudy(styles=["banksy"], architectures=["img2img"], steps=1, seed=0)
    summary = style_match.run(tiny_settings, tmp_path / "sm", study, default_photos(2))
    cell = summary["cells"]["banksy|img2img"]
    assert (cell["yes"], cell["n"]) == (1, 2)
    assert cell["vqa_score"] == 0.5
    assert calls == ["Is this picture in the style of Banksy?"] * 2


def test_style_match_samples_sheet_shows_every_photo(tiny_settings, tmp_path):
    """All five default photos get a row in the samples sheet (it used to stop at four), and a tiny run's
    report opens with the random-weights warning."""
    import inspect

    from inference.eval import report as rep
    from inference.eval import style_match
    from inference.eval.photos import DEFAULT_PHOTOS, default_photos

    study = style_match.StyleMatchStudy(styles=["banksy"], architectures=["img2img"], steps=1, seed=0)
    style_match.run(tiny_settings, tmp_path / "sm", study, default_photos())
    data = json.loads((tmp_path / "sm" / "results.json").read_text())
    assert style_match.sample_photos(data["units"]) == list(DEFAULT_PHOTOS)
    thumb_px = inspect.signature(rep.contact_sheet).parameters["thumb"].default * 100  # dpi 100
    with Image.open(tmp_path / "sm" / "samples_img2img.png") as sheet:
        assert sheet.height > len(DEFAULT_PHOTOS) * thumb_px  # five rows of thumbnails, not four
    report = (tmp_path / "sm" / "report.md").read_text()
    assert report.split("\n")[2].startswith("> **Random weights: these numbers are meaningless.**")


def test_style_match_fast_puts_the_fast_schedule_beside_the_normal_one(eval_env, tmp_path):
    run_cli(*STYLE_ARGS, "--arch", "img2img", "--fast", "--report-dir", str(tmp_path))
    data = results(tmp_path, "style-match")
    images = {u["arch"]: u for u in data["units"].values() if u["kind"] == "image"}
    assert set(images) == {"img2img", "img2img-fast"}
    assert set(data["summary"]["cells"]) == {"vangogh|img2img", "vangogh|img2img-fast"}
    text = assert_report(
        tmp_path,
        "style-match",
        ["## img2img + caption\n", "## img2img + caption, fast mode", "s / picture"],
        ["vqa_style_match.png", "samples_img2img-fast.png"],
    )
    assert "| style | img2img + caption | img2img + caption, fast mode |" in text
