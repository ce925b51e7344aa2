"""The model layer on the tiny twins: built once, loaded through from_pretrained, overridable, and a
one-line answer when real weights are missing offline."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from inference import tiny
from inference.captioner import FALLBACK_CAPTION, clean_caption
from inference.models import ModelMissing, load_models, pick_device, resolve
from inference.settings import InferenceSettings

REPO = Path(__file__).resolve().parents[2]


def test_tiny_models_are_built_once_and_loaded_with_from_pretrained(
    tiny_settings, tiny_models, monkeypatch
) -> None:
    base = Path(resolve(tiny_settings, "base"))
    assert base == tiny_settings.data_dir / "models" / "tiny" / "base"
    assert (base / ".complete").is_file() and (base / "model_index.json").is_file()
    monkeypatch.setattr(tiny, "BUILDERS", {})  # any rebuild would now fail with a KeyError
    again = load_models(tiny_settings, roles=("base", "caption"))
    assert again.txt2img.unet.config.block_out_channels == tiny_models.txt2img.unet.config.block_out_channels
    # fixed seeds: the same weights. Earlier tests may have left (disabled) adapters on the session's UNet
    # (fast mode's LoRA stays resident), so compare the base weights by name.
    loaded, resident = base_weights(again.txt2img.unet), base_weights(tiny_models.txt2img.unet)
    assert loaded.keys() == resident.keys()
    for name, weight in loaded.items():
        assert torch.equal(weight, resident[name]), name


def base_weights(unet) -> dict:
    """The UNet's own parameters, without LoRA adapters (peft renames a wrapped layer's to base_layer)."""
    return {name.replace(".base_layer", ""): p for name, p in unet.named_parameters() if "lora_" not in name}


def test_model_set_shares_components(tiny_models) -> None:
    m = tiny_models
    assert m.preset.name == "tiny" and m.resolution == 128
    assert m.device == torch.device("cpu") and m.dtype == torch.float32
    assert m.img2img.unet is m.txt2img.unet and m.img2img.vae is m.txt2img.vae
    assert type(m.txt2img.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert m.txt2img.scheduler.config.algorithm_type == "dpmsolver++"
    assert m.txt2img.safety_checker is None
    assert m.txt2img.vae_scale_factor == 8  # four VAE blocks, like the real one
    assert m.base_id == "artbooth/tiny-base"


def test_lazy_vqa_and_controlnet(tiny_models) -> None:
    processor, model = tiny_models.vqa()
    assert tiny_models.vqa()[1] is model
    inputs = processor(images=Image.new("RGB", (64, 64)), text="is this a painting?", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=3)
    assert isinstance(processor.decode(out[0], skip_special_tokens=True), str)
    control = tiny_models.controlnet()
    assert control.config.cross_attention_dim == tiny_models.txt2img.unet.config.cross_attention_dim


def test_override_with_a_local_directory(tiny_settings) -> None:
    settings = InferenceSettings(
        data_dir=tiny_settings.data_dir,
        models="sd15",  # real ids everywhere, but both loaded roles point at local folders
        device="cpu",
        overrides={
            "base": str(tiny_settings.data_dir / "models" / "tiny" / "base"),
            "caption": str(tiny_settings.data_dir / "models" / "tiny" / "caption"),
        },
    )
    models = load_models(settings)
    assert models.preset.name == "sd15" and models.resolution == 512
    assert models.base_id == settings.overrides["base"]
    assert models.captioner is not None


def test_missing_local_override_is_model_missing(tiny_settings) -> None:
    settings = InferenceSettings(
        data_dir=tiny_settings.data_dir, models="tiny", device="cpu", overrides={"base": "/nonexistent/dir"}
    )
    with pytest.raises(ModelMissing) as info:
        load_models(settings)
    assert "MODELS=tiny" in str(info.value) and "\n" not in str(info.value)


def test_missing_real_weights_offline_print_one_line(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    Image.new("RGB", (96, 96), (90, 120, 30)).save(photo)
    env = dict(
        os.environ,
        MODELS="sd15",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        DATA_DIR=str(tmp_path / "data"),
        DEVICE="cpu",
    )
    env.pop("MODEL_BASE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "stylize", str(photo), "--out", str(tmp_path / "out")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: model_missing: base model 'stable-diffusion-v1-5/stable-diffusion-v1-5'")
    # huggingface_hub >= 1.0 ships `hf`, not `huggingface-cli`; the reason is cut between words, whole.
    assert "HF_HOME" in line and "`hf download stable-diffusion-v1-5/" in line and "MODELS=tiny" in line
    assert "huggingface-cli" not in line and " )" not in line and line.count("(") == line.count(")")


def test_concurrent_builds_leave_one_complete_folder(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def build() -> None:
        try:
            tiny.ensure_built("tiny", "control", tmp_path)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    folder = tmp_path / "tiny" / "control"
    assert (folder / ".complete").is_file() and (folder / "config.json").is_file()
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == ["control"]  # no temp dirs left behind


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            pick_device("cuda:1")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a photography of a woman with long hair.", "a woman with long hair"),
        ("arafed man man with a a beard [unused12] !!", "man with a beard"),
        ("  A   Dog  ", "a dog"),
        ("[unused1] [unused2] ,", FALLBACK_CAPTION),
        ("", FALLBACK_CAPTION),
    ],
)
def test_clean_caption(raw: str, clean: str) -> None:
    assert clean_caption(raw) == clean


def test_captioner_is_batched_deterministic_and_clean(tiny_models) -> None:
    images = [Image.new("RGB", (128, 128), c) for c in ((200, 30, 30), (30, 30, 200))]
    first = tiny_models.captioner.caption(images)
    assert len(first) == 2 and first == tiny_models.captioner.caption(images)
    for text in first:
        assert text == text.lower().strip() and "[" not in text and "  " not in text and text


def test_greedy_decoder_matches_transformers_generate(tiny_models) -> None:
    cap = tiny_models.captioner
    images = [Image.new("RGB", (128, 128), c) for c in ((200, 30, 30), (10, 10, 10))]
    ours = cap.generate_ids(images)
    with torch.inference_mode():
        ref = cap.model.generate(
            **cap._inputs(images), do_sample=False, num_beams=1, max_new_tokens=cap.max_new_tokens
        )
    assert torch.equal(ours[:, : ref.shape[1]], ref)


def test_the_worker_points_torchs_compile_caches_under_data_dir_before_importing_diffusers(
    tmp_path: Path, monkeypatch
) -> None:
    """torch settles on its inductor cache directory when diffusers is imported; set later, the kernels
    went to /tmp/torchinductor_root, which a new machine or container does not keep."""
    import argparse

    env = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    env.update(ARTBOOTH_COMPILE="1", DATA_DIR=str(tmp_path), MODELS="tiny")
    probe = (
        "import argparse, os, sys\n"
        "from inference.__main__ import settings_from\n"
        "settings_from(argparse.Namespace(device=None))\n"
        "print(os.environ['TORCHINDUCTOR_CACHE_DIR'], os.environ['TRITON_CACHE_DIR'], 'diffusers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    inductor, triton, imported = out.stdout.split()
    assert inductor == str(tmp_path / "compile-cache" / "inductor")
    assert triton == str(tmp_path / "compile-cache" / "triton")
    assert imported == "False"
    # compile off: torch's own defaults stay
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("ARTBOOTH_COMPILE", "0")
    from inference.__main__ import settings_from

    settings_from(argparse.Namespace(device=None))
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
