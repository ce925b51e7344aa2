"""/pose on the tiny models: the edges are deterministic, they really steer the pictures, and the job
refuses what is not the user's or not a usable reference."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from skimage import data

from inference.edges import canny_edges
from inference.pose import pose_portraits, run_pose_job
from inference.train import TrainConfig
from inference.train.loop import train_lora
from jobs.errors import BAD_LORA, BAD_REQUEST, IMAGE_TOO_SMALL, NOT_AN_IMAGE, JobError
from jobs.files import LocalFiles
from tests.inference.test_stylize import psnr

FAST = dict(cls="man", rank=4, steps=2, lr=1e-2, warmup_steps=0, num_class_images=2, class_image_steps=2)


def figure(size=(320, 256), arm_up: bool = True) -> Image.Image:
    """A stick figure on a plain wall: one arm up or both down (two poses)."""
    image = Image.new("RGB", size, (90, 110, 140))
    draw = ImageDraw.Draw(image)
    draw.ellipse([140, 30, 180, 70], fill=(230, 190, 160))
    draw.rectangle([150, 70, 170, 170], fill=(200, 40, 40))
    draw.line([(160, 90), (110, 30 if arm_up else 150)], fill=(230, 190, 160), width=10)
    draw.line([(160, 90), (210, 150)], fill=(230, 190, 160), width=10)
    return image


def arrays(images) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


@pytest.fixture(scope="module")
def data_dir(tiny_models, tmp_path_factory) -> Path:
    """DATA_DIR with user 1's LoRA and two of their uploads."""
    root = tmp_path_factory.mktemp("pose")
    face = Image.fromarray(data.astronaut())
    train_lora(
        tiny_models,
        [face, face.transpose(Image.FLIP_LEFT_RIGHT), face.rotate(5)],
        TrainConfig(**FAST, seed=1),
        out=root / "loras" / "1" / "lora.safetensors",
        class_cache=root / "class_images",
    )
    uploads = root / "uploads" / "1"
    uploads.mkdir(parents=True)
    figure().save(uploads / "ref.jpg")
    figure((120, 90)).save(uploads / "small.jpg")
    (uploads / "notes.jpg").write_bytes(b"not a picture at all")
    (root / "uploads" / "2").mkdir()
    figure().save(root / "uploads" / "2" / "theirs.jpg")
    return root


def lora(data_dir: Path) -> Path:
    return data_dir / "loras" / "1" / "lora.safetensors"


# -- the edges ----------------------------------------------------------------------------------------
def test_edges_are_deterministic_and_trace_the_outline():
    first, again = canny_edges(figure()), canny_edges(figure())
    assert first.tobytes() == again.tobytes() and first.mode == "RGB" and first.size == (320, 256)
    edges = np.asarray(first)[:, :, 0]
    assert set(np.unique(edges)) == {0, 255}
    ys, xs = np.nonzero(edges)
    assert ys.min() >= 25 and xs.min() >= 100 and xs.max() <= 220  # only around the figure, not the wall
    assert edges[120, 150] == 255 or edges[120, 149] == 255 or edges[120, 151] == 255  # the body's side
    assert not edges[120, 160]  # not inside the body


def test_faint_contrast_is_below_the_thresholds():
    faint = Image.new("RGB", (128, 128), (100, 100, 100))
    ImageDraw.Draw(faint).rectangle([32, 32, 96, 96], fill=(112, 112, 112))
    assert not np.asarray(canny_edges(faint)).any()  # texture-level contrast: not an edge at 100/200
    assert np.asarray(canny_edges(faint, 10, 20)).any()
    with pytest.raises(ValueError):
        canny_edges(faint, 200, 100)


# -- the conditioning is used ----------------------------------------------------------------------------
def test_the_edges_steer_the_pictures_and_the_same_reference_repeats(tiny_models, data_dir):
    """One seed, one caption: only the reference differs, so only the ControlNet can tell them apart."""
    arm_up, arm_down = figure(arm_up=True), figure(arm_up=False)
    one = pose_portraits(tiny_models, lora(data_dir), arm_up, n=4, seed=0, steps=2, caption="a person")
    again = pose_portraits(tiny_models, lora(data_dir), arm_up, n=4, seed=0, steps=2, caption="a person")
    other = pose_portraits(tiny_models, lora(data_dir), arm_down, n=4, seed=0, steps=2, caption="a person")
    assert len(one.images) == 4 and len({im.tobytes() for im in one.images}) == 4
    assert one.images[0].size == (160, 128) == one.edges.size  # the reference's shape, at 128 px
    np.testing.assert_array_equal(arrays(one.images), arrays(again.images))
    assert (
        one.prompt
        == other.prompt
        == "a photo of sks man, a person, detailed face, sharp focus, " + ("high quality photograph")
    )
    assert np.abs(arrays(one.images) - arrays(other.images)).max() > 2  # the tiny VAE flattens a lot
    unconditioned = pose_portraits(
        tiny_models, lora(data_dir), arm_up, n=1, seed=0, steps=2, caption="a person", conditioning_scale=0
    )
    assert np.abs(arrays(one.images[:1]) - arrays(unconditioned.images)).max() > 2


def test_scene_and_caption_make_the_prompt_and_the_lora_is_off_afterwards(tiny_models, data_dir):
    from inference.graphs import _lora_enabled

    unet = tiny_models.txt2img.unet
    before = {name: p.detach().clone() for name, p in unet.named_parameters()}
    result = pose_portraits(tiny_models, lora(data_dir), figure(), "as a knight", n=1, steps=2)
    assert result.prompt.startswith(f"a photo of sks man, as a knight, {result.caption}, ")
    assert result.caption  # BLIP's (the tiny one's words are noise, but it was asked)
    assert not _lora_enabled(unet)  # as an adapter: switched off; fused (the default): the weights restored
    assert all(torch.equal(p, before[name]) for name, p in unet.named_parameters() if name in before)


def test_the_worker_loop_paints_what_the_diffusers_controlnet_pipeline_paints(tiny_models, data_dir):
    """Issue 11: pose portraits on the worker's own loop (the UNet step graphed on CUDA) against diffusers'
    StableDiffusionControlNetPipeline with the same LoRA, prompt, edges and per-picture seeds."""
    from inference.control import CONDITIONING_SCALE, CONTROL_END, _control_pipeline
    from inference.portrait import GUIDANCE, NEGATIVE, users_lora

    ours = pose_portraits(tiny_models, lora(data_dir), figure(), n=3, seed=5, steps=5, caption="a person")
    pipe = _control_pipeline(tiny_models, "StableDiffusionControlNetPipeline")
    with users_lora(tiny_models, lora(data_dir), "1"), torch.inference_mode():
        theirs = pipe(
            [ours.prompt] * 3,
            image=ours.edges,
            negative_prompt=[NEGATIVE] * 3,
            height=128,
            width=160,
            num_inference_steps=5,
            guidance_scale=GUIDANCE,
            controlnet_conditioning_scale=CONDITIONING_SCALE,
            control_guidance_end=CONTROL_END,
            generator=[torch.Generator(device=tiny_models.device).manual_seed(5 + i) for i in range(3)],
        ).images
    assert [im.size for im in theirs] == [im.size for im in ours.images] == [(160, 128)] * 3
    for mine, reference in zip(ours.images, theirs, strict=True):
        assert psnr(np.asarray(reference), np.asarray(mine)) >= 35


def test_the_controlnet_steers_the_first_steps_of_every_chunk(tiny_models, data_dir):
    from inference.control import controlled_steps

    assert controlled_steps(20) == 16 and controlled_steps(5) == 4 and controlled_steps(3) == 2
    assert controlled_steps(20, 1.0) == 20 and controlled_steps(20, 0.0) == 0
    calls: list[int] = []
    hook = tiny_models.controlnet().register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    try:
        pose_portraits(tiny_models, lora(data_dir), figure(), n=2, steps=5, caption="a person", max_batch=1)
        assert calls == [2] * 4 + [2] * 4  # two chunks of one picture (with guidance: 2 rows), 4 of 5 steps
        calls.clear()
        pose_portraits(tiny_models, lora(data_dir), figure(), n=2, steps=5, caption="a person", control_end=1)
        assert calls == [4] * 5
    finally:
        hook.remove()
    different = pose_portraits(
        tiny_models, lora(data_dir), figure(), n=2, steps=5, caption="a person", control_end=0.4
    )
    default = pose_portraits(tiny_models, lora(data_dir), figure(), n=2, steps=5, caption="a person")
    assert not np.array_equal(arrays(different.images), arrays(default.images))


def test_a_smaller_batch_gives_the_same_pictures(tiny_models, data_dir):
    whole = pose_portraits(tiny_models, lora(data_dir), figure(), n=3, steps=2, caption="a person")
    split = pose_portraits(
        tiny_models, lora(data_dir), figure(), n=3, steps=2, caption="a person", max_batch=1
    )
    np.testing.assert_allclose(arrays(split.images), arrays(whole.images), atol=2)


# -- the job ---------------------------------------------------------------------------------------------
def context(tiny_models, data_dir: Path, saved: list) -> SimpleNamespace:
    def save_image(image, name):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG")
        saved.append(name)
        return f"results/9/{name}"

    return SimpleNamespace(
        models=tiny_models,
        data_dir=data_dir,
        report=lambda *a, **k: True,
        max_batch=None,
        save_image=save_image,
        fetch=LocalFiles(data_dir).fetch,
    )


def test_the_job_paints_four_from_the_users_own_upload(tiny_models, data_dir):
    saved: list[str] = []
    job = SimpleNamespace(id=9, user_id=1, payload={"reference": "uploads/1/ref.jpg", "scene": "as a knight"})
    result = run_pose_job(context(tiny_models, data_dir, saved), job)
    assert saved == ["00.jpg", "01.jpg", "02.jpg", "03.jpg"]
    assert [i["path"] for i in result["images"]] == [f"results/9/{n}" for n in saved]
    assert result["seed"] == 9 and "as a knight" in result["prompt"] and result["caption"]


@pytest.mark.parametrize(
    ("payload", "user", "code"),
    [
        ({"reference": "uploads/2/theirs.jpg"}, 1, BAD_REQUEST),  # another user's upload
        ({"reference": "uploads/1/../2/theirs.jpg"}, 1, BAD_REQUEST),
        ({"reference": "uploads/2/theirs.jpg", "lora": "loras/1/lora.safetensors"}, 2, BAD_LORA),
        ({"reference": "uploads/1/small.jpg"}, 1, IMAGE_TOO_SMALL),
        ({"reference": "uploads/1/notes.jpg"}, 1, NOT_AN_IMAGE),
        ({}, 1, BAD_REQUEST),
        ({"reference": "uploads/1/ref.jpg", "n": "four"}, 1, BAD_REQUEST),
    ],
)
def test_the_job_refuses(tiny_models, data_dir, payload, user, code):
    job = SimpleNamespace(id=9, user_id=user, payload=payload)
    with pytest.raises(JobError) as error:
        run_pose_job(context(tiny_models, data_dir, []), job)
    assert error.value.code == code


# -- the evaluation's third architecture -------------------------------------------------------------
def test_img2img_with_edges_paints_each_style(tiny_models):
    from inference.control import stylize_with_edges

    photo = figure()
    result = stylize_with_edges(tiny_models, photo, styles=["vangogh", "banksy"], steps=4, caption="a man")
    again = stylize_with_edges(tiny_models, photo, styles=["vangogh", "banksy"], steps=4, caption="a man")
    assert [style for style, _ in result.images] == ["vangogh", "banksy"]
    assert result.images[0][1].size == (160, 128)
    assert result.images[0][1].tobytes() == again.images[0][1].tobytes()


# -- the command line --------------------------------------------------------------------------------
def test_cli_writes_the_pictures_and_the_edges(tiny_settings, data_dir, monkeypatch, tmp_path, capsys):
    from inference.__main__ import main

    for key, value in (("DATA_DIR", str(tiny_settings.data_dir)), ("MODELS", "tiny"), ("DEVICE", "cpu")):
        monkeypatch.setenv(key, value)
    reference = data_dir / "uploads" / "1" / "ref.jpg"
    argv = ["pose", str(reference), "--lora", str(lora(data_dir)), "as a knight", "--out", str(tmp_path)]
    assert main([*argv, "-n", "2", "--steps", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edges.png", "pose_00.png", "pose_01.png"]
    with Image.open(tmp_path / "edges.png") as edges:
        assert edges.size == (160, 128) and set(np.unique(np.asarray(edges))) == {0, 255}
    assert "'a photo of sks man, as a knight, " in capsys.readouterr().out
    small = data_dir / "uploads" / "1" / "small.jpg"
    assert main(["pose", str(small), "--lora", str(lora(data_dir)), "--out", str(tmp_path)]) == 2
    assert "image_too_small" in capsys.readouterr().err


def test_bench_pose_part_on_tiny(bench_on_tiny):
    pose = bench_on_tiny("--pose", "--iters", "1", "--warmup", "0", "--steps", "2", "--variants", "1")["pose"]
    assert pose["steps"] == 20 and pose["lora_rank"] == 32
    assert pose["pose_4_s"] > 0 and pose["control_load_s"] >= 0 and pose["pose_4_gpu_s"] is None


def test_style_match_measures_the_controlnet_architecture(tiny_settings, tmp_path):
    from inference.eval import style_match
    from inference.eval.photos import default_photos

    study = style_match.StyleMatchStudy(styles=["vangogh"], architectures=["img2img", "controlnet"], steps=2)
    summary = style_match.run(tiny_settings, tmp_path / "sm", study, default_photos(1))
    cell = summary["cells"]["vangogh|controlnet"]
    assert cell["n"] == 1 and -1 <= cell["clip_photo"]["mean"] <= 1
    assert "## img2img + ControlNet edges" in (tmp_path / "sm" / "report.md").read_text()
    assert (tmp_path / "sm" / "samples_controlnet.png").is_file()
