"""Portraits with personal LoRAs on the tiny models: right adapter, only for the call, bad files refused."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from inference.portrait import adapter_cache, portrait, run_portrait_job
from inference.train import TrainConfig
from inference.train.adapters import TRAIN_ADAPTER
from inference.train.loop import train_lora
from inference.train.lora_io import read_lora_info, save_lora
from jobs.errors import BAD_LORA, BAD_REQUEST, JobError
from jobs.files import LocalFiles

FAST = dict(cls="man", rank=4, steps=2, lr=1e-2, warmup_steps=0, num_class_images=2, class_image_steps=2)


def arrays(result) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.float32) for im in result.images])


def base_render(models) -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    return models.txt2img(
        "a photo of sks man", num_inference_steps=2, generator=generator, output_type="np"
    ).images


@pytest.fixture(scope="module")
def loras(tiny_models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("portrait")
    face = Image.fromarray(data.astronaut())
    crops = [face, face.transpose(Image.FLIP_LEFT_RIGHT), face.rotate(5)]
    paths = {}
    for user, seed in (("1", 1), ("2", 2)):
        out = root / "loras" / user / "lora.safetensors"
        train_lora(
            tiny_models, crops, TrainConfig(**FAST, seed=seed), out=out, class_cache=root / "class_images"
        )
        paths[user] = out
    return paths


def test_four_portraits_and_the_adapter_is_off_afterwards(tiny_models, loras):
    before = base_render(tiny_models)
    result = portrait(tiny_models, loras["1"], "on the moon", n=4, steps=2, owner="1")
    assert len(result.images) == 4 and result.images[0].size == (128, 128)
    assert result.prompt.startswith("a photo of sks man, on the moon")
    assert len({im.tobytes() for im in result.images}) == 4  # one seed per image
    np.testing.assert_array_equal(base_render(tiny_models), before)
    assert TRAIN_ADAPTER not in (getattr(tiny_models.txt2img.unet, "peft_config", None) or {})


def test_two_users_get_their_own_faces(tiny_models, loras):
    one = portrait(tiny_models, loras["1"], "in a forest", n=1, steps=2, owner="1")
    two = portrait(tiny_models, loras["2"], "in a forest", n=1, steps=2, owner="2")
    one_again = portrait(tiny_models, loras["1"], "in a forest", n=1, steps=2, owner="1")
    assert np.abs(arrays(one) - arrays(two)).max() > 0
    np.testing.assert_array_equal(
        arrays(one), arrays(one_again)
    )  # user 2's adapter never leaks into 1's call


def test_full_prompt_with_the_token_is_kept():
    from inference.portrait import build_prompt

    assert build_prompt("a photo of sks man on the moon", "sks", "man") == "a photo of sks man on the moon"


def test_corrupt_file_is_bad_lora(tiny_models, tmp_path):
    broken = tmp_path / "lora.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(JobError) as error:
        portrait(tiny_models, broken, "on the moon", n=1, steps=2)
    assert error.value.code == BAD_LORA


def test_lora_for_another_base_is_bad_lora(tiny_models, loras, tmp_path):
    from safetensors.torch import load_file

    layers = {k.removeprefix("unet."): v for k, v in load_file(loras["1"]).items()}
    other = save_lora(
        tmp_path / "other.safetensors",
        unet_layers=layers,
        text_encoder_layers=None,
        base_model="runwayml/some-other-model",
        rank=4,
        alpha=4,
        steps=2,
        token="sks",
        cls="man",
        unet_targets=("to_q", "to_k", "to_v", "to_out.0"),
    )
    assert read_lora_info(other).base_model == "runwayml/some-other-model"
    with pytest.raises(JobError) as error:
        portrait(tiny_models, other, "on the moon", n=1, steps=2)
    assert error.value.code == BAD_LORA and "some-other-model" in error.value.message


def test_empty_scene_is_bad_request(tiny_models, loras):
    with pytest.raises(JobError) as error:
        portrait(tiny_models, loras["1"], "   ", n=1, steps=2)
    assert error.value.code == BAD_REQUEST


def test_retrained_file_is_loaded_afresh(tiny_models, loras):
    cache = adapter_cache(tiny_models)
    first, _ = cache.acquire(loras["1"], "1")
    os.utime(loras["1"], ns=(1, 1))  # as if retraining replaced the file
    second, _ = cache.acquire(loras["1"], "1")
    assert first != second and sum(k[0] == str(loras["1"].resolve()) for k in cache.entries) == 1


def test_job_refuses_another_users_lora(tiny_models, loras):
    data_dir = loras["1"].parents[2]
    ctx = SimpleNamespace(
        models=tiny_models, data_dir=data_dir, report=lambda *a, **k: True, fetch=LocalFiles(data_dir).fetch
    )
    job = SimpleNamespace(id=7, user_id=2, payload={"lora": "loras/1/lora.safetensors", "scene": "moon"})
    with pytest.raises(JobError) as error:
        run_portrait_job(ctx, job)
    assert error.value.code == BAD_LORA


@pytest.mark.parametrize("bad", [{"n": "many"}, {"seed": "x"}])
def test_job_with_malformed_numbers_is_bad_request(tiny_models, loras, bad):
    data_dir = loras["1"].parents[2]
    ctx = SimpleNamespace(
        models=tiny_models,
        data_dir=data_dir,
        report=lambda *a, **k: True,
        max_batch=None,
        fetch=LocalFiles(data_dir).fetch,
    )
    payload = {"lora": "loras/1/lora.safetensors", "scene": "moon", **bad}
    with pytest.raises(JobError) as error:
        run_portrait_job(ctx, SimpleNamespace(id=7, user_id=1, payload=payload))
    assert error.value.code == BAD_REQUEST


def test_loaded_but_disabled_adapters_leave_the_base_unet_graphable(tiny_models, loras):
    """Stylize replays CUDA graphs of the base UNet; loaded portrait adapters must not switch that off."""
    from inference.graphs import _lora_enabled

    unet = tiny_models.txt2img.unet
    portrait(tiny_models, loras["1"], "on the moon", n=1, steps=2, owner="1")
    assert unet.peft_config  # the adapter stays loaded for the user's next /me
    assert not _lora_enabled(unet)
    cache = adapter_cache(tiny_models)
    name, _ = cache.acquire(loras["1"], "1")
    with cache.only(name, 0.8):
        assert _lora_enabled(unet)  # during a portrait the graphs (captured without LoRA) must not run
    assert not _lora_enabled(unet)


def test_portrait_split_into_smaller_batches_gives_the_same_pictures(tiny_models, loras):
    whole = portrait(tiny_models, loras["1"], "on the moon", n=3, steps=2, owner="1")
    split = portrait(tiny_models, loras["1"], "on the moon", n=3, steps=2, owner="1", max_batch=1)
    np.testing.assert_allclose(arrays(split), arrays(whole), atol=2)


def test_fused_lora_paints_what_the_peft_adapter_paints_and_restores_the_base(
    tiny_models, loras, monkeypatch
):
    """Portraits through the fast path (the user's LoRA fused into the weights for the job) against the
    plain path (diffusers' pipeline with the peft adapter enabled): same seed, same pictures (PSNR)."""
    unet = tiny_models.txt2img.unet
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    fused = portrait(tiny_models, loras["1"], "in a forest", n=2, steps=3, owner="1")
    other = portrait(tiny_models, loras["2"], "in a forest", n=2, steps=3, owner="2")
    assert all(torch.equal(p, before[n]) for n, p in unet.named_parameters())  # base restored exactly
    monkeypatch.setattr(tiny_models.settings, "fuse_lora", False)
    plain = portrait(tiny_models, loras["1"], "in a forest", n=2, steps=3, owner="1")
    mse = np.mean((arrays(fused) - arrays(plain)) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 35
    assert np.abs(arrays(fused) - arrays(other)).max() > 0  # the other user's LoRA paints someone else
