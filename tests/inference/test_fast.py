"""Fast mode on the tiny twins: the few-step schedule end to end, with a user's LoRA fused into its UNet (or
stacked on it as adapters), and the normal schedule's pictures bit-identical before and after a fast job ran
in the same worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from PIL import Image
from skimage import data

from contract.kinds import PortraitRequest, PortraitResult, StylizeRequest, StylizeResult
from contract.styles import ARTISTS
from inference.buckets import bucket_for
from inference.fast import ADAPTER, fast_unet
from inference.graphs import _lora_enabled
from inference.portrait import adapter_cache, portrait
from inference.settings import InferenceSettings
from inference.stylize import StylizeItem, stylize, stylize_batch
from inference.train import TrainConfig
from inference.train.config import TEXT_ENCODER_TARGETS
from inference.train.loop import train_lora
from inference.train.lora_io import save_lora
from inference.worker import Worker
from jobs import JobQueue, JobState
from jobs.wait import burst


@pytest.fixture(scope="module")
def data_dir(tiny_settings, tmp_path_factory) -> Path:
    """A DATA_DIR beside the session's tiny models, with a photo and a user's LoRA in it."""
    root = tmp_path_factory.mktemp("fast")
    (root / "models").symlink_to(tiny_settings.data_dir / "models", target_is_directory=True)
    (root / "uploads" / "1").mkdir(parents=True)
    Image.fromarray(data.astronaut()).resize((192, 160)).save(root / "uploads" / "1" / "me.jpg")
    return root


@pytest.fixture(scope="module")
def lora(tiny_models, data_dir) -> Path:
    face = Image.fromarray(data.astronaut())
    config = TrainConfig(
        cls="man", rank=4, steps=2, lr=1e-2, warmup_steps=0, num_class_images=2, class_image_steps=2
    )
    out = data_dir / "loras" / "1" / "lora.safetensors"
    crops = [face, face.transpose(Image.FLIP_LEFT_RIGHT), face.rotate(5)]
    train_lora(tiny_models, crops, config, out=out, class_cache=data_dir / "class_images")
    return out


@pytest.fixture(scope="module")
def other_lora(tiny_models, data_dir) -> Path:
    """A second user's LoRA that adapts the text encoder too, which both UNets' fusers share. Its text
    encoder layers are random, not trained: transformers 5 wants peft >= 0.22 for a text-encoder adapter."""
    from safetensors.torch import load_file

    face = Image.fromarray(data.astronaut()).rotate(20)
    config = TrainConfig(
        cls="woman", rank=4, steps=2, lr=1e-2, warmup_steps=0, num_class_images=2, class_image_steps=2, seed=2
    )
    out = data_dir / "loras" / "2" / "lora.safetensors"
    crops = [face, face.transpose(Image.FLIP_LEFT_RIGHT)]
    train_lora(tiny_models, crops, config, out=out, class_cache=data_dir / "class_images")
    generator = torch.Generator().manual_seed(2)
    text_layers = {}
    for name, module in tiny_models.txt2img.text_encoder.named_modules():
        if name.rsplit(".", 1)[-1] in TEXT_ENCODER_TARGETS:
            text_layers[f"{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=generator)
            text_layers[f"{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=generator)
    return save_lora(
        out,
        unet_layers={k.removeprefix("unet."): v for k, v in load_file(out).items()},
        text_encoder_layers=text_layers,
        base_model=tiny_models.base_id,
        rank=4,
        alpha=4,
        steps=2,
        token=config.token,
        cls=config.cls,
        unet_targets=config.unet_targets,
        text_encoder_targets=TEXT_ENCODER_TARGETS,
    )


@pytest.fixture(scope="module")
def worker(tiny_models, data_dir) -> Worker:
    settings = InferenceSettings(data_dir=data_dir, models="tiny", device="cpu")
    return Worker(settings, models=tiny_models, lease_s=30)


def run(worker: Worker, kind: str, payload: dict) -> dict:
    job_id = worker.queue.enqueue(kind, payload, user_id=1, priority=10)
    assert worker.run_pending() == 1
    job = worker.queue.get(job_id)
    assert job.state is JobState.DONE, (job.error_code, job.error_message)
    return job.result


def tensors(result) -> torch.Tensor:
    pictures = [im for _, im in result.images] if isinstance(result.images[0], tuple) else result.images
    return torch.stack([torch.from_numpy(np.asarray(im).copy()) for im in pictures])


def test_fast_album_and_portraits_through_the_worker(worker, data_dir, lora):
    album = StylizeResult.from_dict(
        run(worker, "stylize", StylizeRequest("uploads/1/me.jpg", fast=True).to_payload())
    )
    assert album.fast and [i.style for i in album.images] == list(ARTISTS)
    sizes = {Image.open(data_dir / i.path).size for i in album.images}
    assert sizes == {bucket_for(192, 160, 128)}  # the photo's shape bucket at the tiny models' 128 px

    request = PortraitRequest("on the moon", lora="loras/1/lora.safetensors", fast=True)
    portraits = PortraitResult.from_dict(run(worker, "portrait", request.to_payload()))
    assert portraits.fast and len(portraits.images) == 4
    assert {Image.open(data_dir / p).size for p in portraits.images} == {(128, 128)}

    normal = StylizeResult.from_dict(run(worker, "stylize", StylizeRequest("uploads/1/me.jpg").to_payload()))
    assert not normal.fast


@contextlib.contextmanager
def unet_calls(models) -> Iterator[list[tuple[int, str]]]:
    """(batch, "normal" | "fast") for every UNet call in the block, from hooks on both resident UNets."""
    calls: list[tuple[int, str]] = []

    def count(name):
        return lambda module, args, kwargs: calls.append((args[0].shape[0], name))

    hooks = [
        models.txt2img.unet.register_forward_pre_hook(count("normal"), with_kwargs=True),
        fast_unet(models).register_forward_pre_hook(count("fast"), with_kwargs=True),
    ]
    try:
        yield calls
    finally:
        for hook in hooks:
            hook.remove()


def test_fast_is_few_unguided_steps_on_its_own_unet(tiny_models):
    photo = Image.fromarray(data.astronaut()).resize((160, 128))
    with unet_calls(tiny_models) as calls:
        fast = stylize(tiny_models, photo, seed=1, fast=True)
        assert {name for _, name in calls} == {"fast"}
        # strengths 0.6-0.7 on the 6-step grid: 3-4 steps, one pass per picture (no guidance)
        assert len(calls) == 4 and max(batch for batch, _ in calls) == 4
        calls.clear()
        normal = stylize(tiny_models, photo, seed=1)
        assert {name for _, name in calls} == {"normal"} and len(calls) == 21
        assert max(batch for batch, _ in calls) == 8
    assert not torch.equal(tensors(fast), tensors(normal))
    again = stylize(tiny_models, photo, seed=1, fast=True)
    assert torch.equal(tensors(again), tensors(fast))  # TCD's per-step noise is seeded too


@contextlib.contextmanager
def autoencoder_calls(models) -> Iterator[list[str]]:
    """Which autoencoder ran, per encode or decode: 'tiny' (fast mode's) or 'full' (the base VAE)."""
    from inference.fast import tiny_vae

    calls: list[str] = []
    parts = {"tiny": tiny_vae(models), "full": models.txt2img.vae}
    hooks = [
        getattr(vae, part).register_forward_hook(lambda *_, name=f"{name}.{part}": calls.append(name))
        for name, vae in parts.items()
        if vae is not None
        for part in ("encoder", "decoder")
    ]
    try:
        yield calls
    finally:
        for hook in hooks:
            hook.remove()


def test_fast_albums_and_portraits_encode_and_decode_with_the_tiny_autoencoder(
    tiny_models, lora, monkeypatch
):
    photo = Image.fromarray(data.astronaut()).resize((160, 128))
    with autoencoder_calls(tiny_models) as calls:
        album = stylize(tiny_models, photo, seed=1, fast=True)
        assert calls == ["tiny.encoder", "tiny.decoder"]  # the photo once, the four pictures in one slice
        calls.clear()
        portraits = portrait(tiny_models, lora, "on the moon", n=4, owner="1", fast=True)
        assert calls == ["tiny.decoder"]
        calls.clear()
        stylize(tiny_models, photo, seed=1)
        assert calls == ["full.encoder", "full.decoder"]  # the normal schedule never touches it
        calls.clear()
        two = [
            StylizeItem(photo, seed=1),
            StylizeItem(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), seed=2),
        ]
        stylize_batch(tiny_models, two, fast=True)  # a fast batch of two users' albums: 8 pictures
        assert calls == ["tiny.encoder", "tiny.decoder"]  # TAESD decodes them in one call
        calls.clear()
        stylize_batch(tiny_models, two)
        assert calls == ["full.encoder", "full.decoder", "full.decoder"]  # SD's VAE: slices (decode_slice)
    assert [im.size for _, im in album.images] == [bucket_for(160, 128, 128)] * 4
    assert {im.size for im in portraits.images} == {(128, 128)}

    # ARTBOOTH_FAST_TINY_VAE=0: the base VAE, and other pictures from the same latents
    monkeypatch.setattr(tiny_models.settings, "fast_tiny_vae", False)
    monkeypatch.setitem(tiny_models._lazy, "fast_vae", None)
    with autoencoder_calls(tiny_models) as calls:
        full = stylize(tiny_models, photo, seed=1, fast=True)
    assert calls == ["full.encoder", "full.decoder"]
    assert not torch.equal(tensors(full), tensors(album))


def test_fast_mode_without_the_tiny_autoencoders_weights_uses_the_full_vae(
    tiny_settings, tiny_models, caplog
):
    from dataclasses import replace

    from inference.fast import tiny_vae
    from inference.models import ModelSet

    settings = replace(tiny_settings, overrides={"fast_vae": "/nonexistent/taesd"})
    models = ModelSet(**{**tiny_models.__dict__, "settings": settings, "_lazy": {}})
    assert tiny_vae(models) is None
    assert "fast_vae model '/nonexistent/taesd' is not available" in caplog.text
    photo = Image.fromarray(data.astronaut()).resize((128, 128))
    assert len(stylize(models, photo, seed=1, fast=True).images) == 4  # painted, not failed


def weights(models) -> dict[str, torch.Tensor]:
    """Every weight of both UNets and the shared text encoder, copied."""
    parts = {"unet": models.txt2img.unet, "fast": fast_unet(models), "text": models.txt2img.text_encoder}
    return {f"{k}.{n}": p.detach().clone() for k, m in parts.items() for n, p in m.named_parameters()}


def same_weights(models, before: dict[str, torch.Tensor]) -> bool:
    now = weights(models)
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)


def psnr(a, b) -> float:
    mse = np.mean((tensors(a).double().numpy() - tensors(b).double().numpy()) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_fused_fast_portraits_are_few_unguided_steps_on_the_fast_unet(tiny_models, lora):
    with unet_calls(tiny_models) as calls:
        result = portrait(tiny_models, lora, "on the moon", n=4, owner="1", fast=True)
    assert result.fast and len(result.images) == 4 and {im.size for im in result.images} == {(128, 128)}
    assert len({im.tobytes() for im in result.images}) == 4  # one seed per picture
    assert calls == [(4, "fast")] * tiny_models.preset.fast.steps  # no guidance: one pass per picture
    assert not _lora_enabled(tiny_models.txt2img.unet)  # no peft layer ran: the graphs can replay
    # each picture's TCD noise comes from its own generator: the worker's split after an OOM keeps them
    split = portrait(tiny_models, lora, "on the moon", n=4, owner="1", fast=True, max_batch=1)
    np.testing.assert_allclose(tensors(split).float(), tensors(result).float(), atol=2)


def test_fused_fast_portraits_paint_what_the_stacked_adapters_paint(tiny_models, lora, monkeypatch):
    """The user's LoRA fused on top of the distillation LoRA's fused weights against diffusers' pipeline with
    the two adapters stacked (the fallback), same seed: the same pictures but for rounding (PSNR, as the
    normal schedule's fused-against-adapter test), TCD's per-step noise included."""
    before = weights(tiny_models)
    fused = portrait(tiny_models, lora, "in a forest", n=4, seed=5, owner="1", fast=True)
    assert same_weights(tiny_models, before)  # both UNets and the text encoder restored bit for bit
    monkeypatch.setattr(tiny_models.settings, "fuse_lora", False)
    stacked = portrait(tiny_models, lora, "in a forest", n=4, seed=5, owner="1", fast=True)
    assert psnr(fused, stacked) >= 35
    # The tiny user's LoRA moves the pictures little (about 46 dB): fused must be far nearer than that.
    no_user = portrait(tiny_models, lora, "in a forest", n=4, seed=5, owner="1", fast=True, lora_scale=0.0)
    assert psnr(fused, stacked) >= psnr(stacked, no_user) + 20


def test_two_users_fast_portraits_in_a_row_keep_their_own_loras(tiny_models, lora, other_lora):
    one = portrait(tiny_models, lora, "in a forest", n=2, owner="1", fast=True)
    two = portrait(tiny_models, other_lora, "in a forest", n=2, owner="2", fast=True)
    portrait(tiny_models, other_lora, "in a forest", n=2, steps=2, owner="2")  # the normal UNet's fuser
    one_again = portrait(tiny_models, lora, "in a forest", n=2, owner="1", fast=True)
    assert torch.equal(tensors(one_again), tensors(one))  # nothing of user 2's LoRA left behind
    assert not torch.equal(tensors(two), tensors(one))


def test_a_failing_fast_portrait_restores_every_weight(tiny_models, other_lora, monkeypatch):
    import inference.stylize

    before = weights(tiny_models)

    def fail(*args, **kwargs):
        assert not same_weights(tiny_models, before)  # the LoRA is fused while the UNet runs
        raise RuntimeError("CUDA out of memory (as the worker may see it)")

    monkeypatch.setattr(inference.stylize, "decode", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        portrait(tiny_models, other_lora, "on the moon", n=2, owner="2", fast=True)
    assert same_weights(tiny_models, before)


def test_fast_portraits_stack_the_distillation_lora_on_the_users_without_fusing(
    tiny_models, lora, monkeypatch
):
    """ARTBOOTH_FUSE_LORA=0: the two LoRAs as peft adapters of the resident UNet, on for the call only."""
    monkeypatch.setattr(tiny_models.settings, "fuse_lora", False)
    unet = tiny_models.txt2img.unet
    normal = portrait(tiny_models, lora, "on the moon", n=2, steps=2, owner="1")
    fast = portrait(tiny_models, lora, "on the moon", n=2, owner="1", fast=True)
    assert fast.fast and len(fast.images) == 2 and fast.images[0].size == (128, 128)
    assert ADAPTER in unet.peft_config and not torch.equal(tensors(fast), tensors(normal))
    assert not _lora_enabled(unet)  # both off again: stylize jobs see the plain UNet
    cache = adapter_cache(tiny_models)
    name, _ = cache.acquire(lora, "1")
    with cache.only(name, 0.8, ADAPTER):
        both = [m for m in unet.modules() if isinstance(m, BaseTunerLayer) and name in m.scaling]
        assert both and all(set(m.active_adapters) == {name, ADAPTER} for m in both)
        assert all(not m.disable_adapters for m in both)
    again = portrait(tiny_models, lora, "on the moon", n=2, owner="1", fast=True)
    assert torch.equal(tensors(again), tensors(fast))


def test_normal_pictures_are_bit_identical_after_fast_jobs(tiny_models, lora, other_lora):
    photo = Image.fromarray(data.astronaut()).resize((160, 128))
    album_before = tensors(stylize(tiny_models, photo, seed=3, steps=10))
    portraits_before = tensors(portrait(tiny_models, lora, "in a forest", n=2, steps=3, owner="1"))
    fast_album_before = tensors(stylize(tiny_models, photo, seed=3, fast=True))
    before = weights(tiny_models)
    portrait(tiny_models, lora, "in a forest", n=2, owner="1", fast=True)
    portrait(tiny_models, other_lora, "in a forest", n=2, owner="2", fast=True)  # text encoder too
    assert same_weights(tiny_models, before)
    assert torch.equal(tensors(stylize(tiny_models, photo, seed=3, steps=10)), album_before)
    assert torch.equal(
        tensors(portrait(tiny_models, lora, "in a forest", n=2, steps=3, owner="1")), portraits_before
    )
    assert torch.equal(tensors(stylize(tiny_models, photo, seed=3, fast=True)), fast_album_before)
    assert type(tiny_models.txt2img.scheduler).__name__ == "DPMSolverMultistepScheduler"


@pytest.mark.parametrize("bad", ["soon", 2, "maybe"])
def test_fast_must_be_a_boolean(bad):
    from jobs.errors import BAD_REQUEST, JobError

    with pytest.raises(JobError) as error:
        StylizeRequest.from_payload({"image": "x.jpg", "fast": bad})
    assert error.value.code == BAD_REQUEST
    assert StylizeRequest.from_payload({"image": "x.jpg", "fast": "false"}).fast is False
    assert PortraitRequest.from_payload({"scene": "moon", "fast": True}).fast is True


def test_a_burst_with_the_threshold_on_delivers_the_last_album_3x_sooner(worker, tmp_path):
    """200 photos from 50 users arrive at once; each is queued as the bot queues it (fast when the expected
    wait passes FAST_MODE_WAIT_S = 20 s). The drain is counted in UNet calls rather than seconds: every
    album of one schedule is the same work, so one of each runs through the worker for its count, and the
    queue's own claim order says when the last user's album is done."""
    calls = {}
    for fast in (False, True):
        payload = StylizeRequest("uploads/1/me.jpg", fast=fast or None).to_payload()
        with unet_calls(worker.models) as made:
            run(worker, "stylize", payload)
        calls[fast] = len(made)
    assert calls == {False: 21, True: 4}

    burst_queue = JobQueue(tmp_path / "burst.sqlite3")
    for photo in range(4):
        for user in range(1, 51):
            fast = burst(burst_queue.expected_wait_s(), threshold_s=20.0)
            request = StylizeRequest(f"uploads/{user}/{photo}.jpg", fast=fast or None)
            burst_queue.enqueue("stylize", request.to_payload(), user_id=user, priority=10)
    order = []
    while (job := burst_queue.claim()) is not None:
        order.append(job)
    fast_flags = [bool(job.payload.get("fast")) for job in order]
    assert len(order) == 200 and not any(fast_flags[:10]) and all(fast_flags[10:])

    last = max(i for i, job in enumerate(order) if job.user_id == 50)
    with_threshold = sum(calls[f] for f in fast_flags[: last + 1])
    without = (last + 1) * calls[False]  # off: every album normal, in the same order
    assert without / with_threshold >= 3, (without, with_threshold)


def test_bench_fast_writes_the_fast_keys(bench_on_tiny):
    argv = ["--iters", "1", "--warmup", "0", "--steps", "4", "--variants", "1"]
    report = bench_on_tiny(*argv, "--fast", "--drain", "2")
    assert report["fast_schedule"]["lora"] == "artbooth/tiny-fast"
    assert report["fast_schedule"]["denoising_steps"] == 3  # 6-step grid at strength 0.6
    for key in ("fast_job_4_s", "fast_stylize_4_s", "fast_portrait_4_s", "fast_queue_albums_per_hour"):
        assert report[key] > 0
    assert report["fast_queue_albums"] == 2
