"""Training a personal LoRA on the tiny models for a few steps (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from skimage import data

from inference.train import TrainConfig
from inference.train.adapters import TRAIN_ADAPTER
from inference.train.loop import TrainingCancelled, train_lora

FAST = dict(cls="man", rank=4, steps=3, lr=1e-2, warmup_steps=0, num_class_images=4, class_image_steps=2)


def photos() -> list[Image.Image]:
    face = Image.fromarray(data.astronaut())
    return [face, face.transpose(Image.FLIP_LEFT_RIGHT), face.rotate(5)]


def render(pipe, prompt: str = "a photo of sks man") -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    return pipe(
        prompt, num_inference_steps=2, height=64, width=64, generator=generator, output_type="np"
    ).images


def lora_adapters(unet) -> list[str]:
    return list(getattr(unet, "peft_config", None) or {})


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory):
    """One LoRA trained on the resident models; the base output before and after."""
    root = tmp_path_factory.mktemp("train")
    before = render(tiny_models.txt2img)
    result = train_lora(
        tiny_models,
        photos(),
        TrainConfig(**FAST),
        out=root / "lora.safetensors",
        class_cache=root / "class_images",
    )
    after = render(tiny_models.txt2img)
    return result, before, after, root


def test_lora_file_has_diffusers_lora_keys_and_metadata(trained):
    result, *_ = trained
    with safe_open(str(result.path), framework="pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("unet.") and (".lora.down." in k or ".lora.up." in k) for k in keys)
    assert any(".to_q." in k for k in keys) and any(".to_out.0." in k for k in keys)
    assert meta["artbooth.base_model"] == "artbooth/tiny-base"
    assert (
        meta["artbooth.rank"],
        meta["artbooth.steps"],
        meta["artbooth.token"],
        meta["artbooth.class"],
    ) == ("4", "3", "sks", "man")
    assert result.steps == 3 and result.class_images_generated == 4 and np.isfinite(result.loss)


def test_training_leaves_the_resident_model_as_it_was(trained, tiny_models):
    _, before, after, _ = trained
    assert TRAIN_ADAPTER not in lora_adapters(tiny_models.txt2img.unet)
    np.testing.assert_array_equal(before, after)
    assert not any(p.requires_grad for p in tiny_models.txt2img.unet.parameters() if p.dtype != torch.float32)


def test_load_lora_weights_accepts_it_and_it_changes_the_picture(trained, tiny_settings):
    from inference.models import load_models

    result, before, *_ = trained
    fresh = load_models(tiny_settings, roles=("base",)).txt2img
    fresh.load_lora_weights(str(result.path), adapter_name="me")
    assert "me" in lora_adapters(fresh.unet)
    fresh.set_adapters(["me"], [1.0])
    fresh.enable_lora()
    assert np.abs(render(fresh) - before).max() > 1e-3


def test_class_images_are_generated_once_then_reused(trained, tiny_models):
    result, _, _, root = trained
    folder = next((root / "class_images").rglob("complete.json")).parent
    mtimes = {p: p.stat().st_mtime_ns for p in folder.glob("*.png")}
    assert len(mtimes) == 4
    again = train_lora(
        tiny_models,
        photos(),
        TrainConfig(**{**FAST, "steps": 1}),
        out=root / "again.safetensors",
        class_cache=root / "class_images",
    )
    assert again.class_images_generated == 0
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.png")} == mtimes


def test_interactive_job_runs_between_steps_on_the_plain_base(trained, tiny_models, tmp_path, db):
    from jobs import JobQueue
    from jobs.models import JobState

    _, before, _, root = trained
    queue = JobQueue(db)  # on SQLite, then on PostgreSQL: the trainer's yield works the same on both
    events: list[str] = []
    seen: list[np.ndarray] = []

    def progress(event) -> bool:
        if event.phase == "training" and event.done == 1:
            queue.enqueue("stylize", {"image": "x.jpg"}, priority=10)  # a photo arrives mid-training
        return True

    def yield_now() -> None:
        job = queue.claim(min_priority=10)
        seen.append(render(tiny_models.txt2img))  # what the interactive job gets from the shared UNet
        queue.finish(job.id, {"ok": True})
        events.append(f"interactive {job.id}")

    cfg = TrainConfig(**{**FAST, "steps": 4})
    result = train_lora(
        tiny_models,
        photos(),
        cfg,
        out=tmp_path / "l.safetensors",
        class_cache=root / "class_images",
        progress=progress,
        should_yield=lambda: queue.has_waiting(10),
        yield_now=yield_now,
    )
    events.append("training done")
    assert events == ["interactive 1", "training done"] and result.yielded == 1
    assert queue.get(1).state == JobState.DONE
    np.testing.assert_array_equal(seen[0], before)  # the in-training adapter was off
    assert result.steps == 4 and result.path.is_file()


def test_cancel_stops_cleanly(tiny_models, tmp_path, trained):
    _, _, _, root = trained
    out = tmp_path / "cancelled.safetensors"
    with pytest.raises(TrainingCancelled):
        train_lora(
            tiny_models,
            photos(),
            TrainConfig(**FAST),
            out=out,
            class_cache=root / "class_images",
            progress=lambda event: event.phase != "training",
        )
    assert not out.exists()
    assert TRAIN_ADAPTER not in lora_adapters(tiny_models.txt2img.unet)


def test_train_payload_values_are_parsed_strictly():
    from inference.train.job import config_from_payload
    from jobs.errors import BAD_REQUEST, JobError

    assert config_from_payload({"train_text_encoder": "false", "steps": "40"}).train_text_encoder is False
    assert config_from_payload({"train_text_encoder": True, "steps": 40}).steps == 40
    for bad in ({"steps": "abc"}, {"train_text_encoder": "maybe"}, {"lr": [1]}):
        with pytest.raises(JobError) as info:
            config_from_payload(bad)
        assert info.value.code == BAD_REQUEST
