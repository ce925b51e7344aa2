"""The models study's parts on their own (issue 14): model specs, the prompt → ImageNet class mapping,
the BigGAN loader and the SDXL LoRA, on the tiny twins. The study end to end: test_eval.py."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_model_specs_name_a_family_a_base_and_a_lora():
    from inference.eval.model_specs import parse_model_spec

    sd = parse_model_spec("stabilityai/stable-diffusion-2-1-base")
    assert (sd.family, sd.base, sd.lora, sd.uses_scheduler) == ("sd", sd.text, None, True)
    xl = parse_model_spec("sdxl:stabilityai/stable-diffusion-xl-base-1.0+ehristoforu/dalle-3-xl-v2")
    assert (xl.family, xl.base, xl.lora) == (
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "ehristoforu/dalle-3-xl-v2",
    )
    assert xl.label == "dalle-3-xl-v2 (SDXL+LoRA)"
    gan = parse_model_spec("biggan:biggan-deep-512")
    assert (gan.family, gan.base, gan.uses_scheduler, gan.label) == (
        "biggan",
        "biggan-deep-512",
        False,
        "biggan-deep-512",
    )
    assert parse_model_spec("sdxl:base+owner/repo/style.safetensors").label == "style (SDXL+LoRA)"
    assert parse_model_spec("C:/models/sd15").family == "sd"  # an unknown prefix is part of a path
    for bad in ("sdxl:", "sdxl:base+", "biggan:x+lora", "sd15+lora"):
        with pytest.raises(ValueError):
            parse_model_spec(bad)


@pytest.fixture(scope="module")
def clip(tiny_settings):
    from inference.eval.metric_models import load_clip

    return load_clip(tiny_settings)


def test_prompt_becomes_a_valid_imagenet_class_and_always_the_same(clip):
    from inference.eval.imagenet import CLASS_TEMPLATE, imagenet_classes, nearest_classes
    from inference.eval.original_study import DEFAULT_PROMPTS

    names = imagenet_classes()
    assert len(names) == len(set(names)) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
    together = nearest_classes(clip, DEFAULT_PROMPTS)
    for match in together:
        assert 0 <= match.index < 1000 and match.name == names[match.index] and -1 <= match.cosine <= 1
    # stable: the same again, and the same one prompt at a time (no dependence on the batch)
    assert [m.index for m in nearest_classes(clip, DEFAULT_PROMPTS)] == [m.index for m in together]
    assert [nearest_classes(clip, [p])[0].index for p in DEFAULT_PROMPTS] == [m.index for m in together]
    # known answer: a class's own text is nearest to itself, even for the random tiny CLIP
    for index in (1, 134, 517, 639):
        (match,) = nearest_classes(clip, [CLASS_TEMPLATE.format(names[index])])
        assert match.index == index and match.cosine == pytest.approx(1.0, abs=1e-4)


def test_biggan_twin_loads_back_strictly_and_draws_by_class_seed_and_truncation(tmp_path):
    import numpy as np
    import torch

    from inference.eval import biggan
    from inference.tiny import build_biggan

    build_biggan(tmp_path / "gan")
    model = biggan.BigGAN.from_pretrained(tmp_path / "gan")
    image = np.asarray(biggan.generate(model, 1, seed=0, truncation=0.4))
    assert image.shape == (64, 64, 3)
    assert np.array_equal(image, np.asarray(biggan.generate(model, 1, seed=0, truncation=0.4)))
    for other in ((2, 0, 0.4), (1, 1, 0.4), (1, 0, 0.7)):  # another class, seed, truncation
        assert not np.array_equal(image, np.asarray(biggan.generate(model, *other)))
    # a checkpoint missing a tensor is an error, not a silent half-random model
    state = torch.load(tmp_path / "gan" / biggan.WEIGHTS_NAME, weights_only=True)
    del state["generator.gen_z.weight_orig"]
    torch.save(state, tmp_path / "gan" / biggan.WEIGHTS_NAME)
    with pytest.raises(RuntimeError, match="gen_z.weight_orig"):
        biggan.BigGAN.from_pretrained(tmp_path / "gan")


def test_sdxl_lora_is_loaded_and_changes_the_picture(tiny_settings):
    import numpy as np

    from inference.eval.generators import load_generator
    from inference.eval.model_specs import parse_model_spec

    def picture(text: str):
        gen = load_generator(tiny_settings, parse_model_spec(text), truncation=0.4, classes={})
        gen.use_scheduler("euler")
        return gen, np.asarray(gen.generate("a crystal city", seed=0, steps=2, guidance=7.5))

    bare_gen, bare = picture("sdxl:tiny")
    lora_gen, with_lora = picture("sdxl:tiny+tiny-lora")
    assert type(bare_gen.pipe).__name__ == "StableDiffusionXLPipeline" and bare.shape == (128, 128, 3)
    assert bare_gen.pipe.get_list_adapters() == {} and lora_gen.pipe.get_active_adapters() == ["study"]
    assert not np.array_equal(bare, with_lora)


def test_original_figure_is_matched_by_model_scheduler_and_prompt():
    from inference.eval.original_study import DEFAULT_PROMPTS, beside_original

    def unit(model: str, sched: str, prompt: str, cos: float) -> dict:
        return {"model": model, "scheduler": sched, "prompt": prompt, "clip_cosine": cos}

    sd21 = "stabilityai/stable-diffusion-2-1-base"
    images = [
        unit(sd21, "euler-a", DEFAULT_PROMPTS[0], 0.30),
        unit(sd21, "euler-a", DEFAULT_PROMPTS[0], 0.34),
        unit(sd21, "euler", DEFAULT_PROMPTS[0], 0.99),  # another scheduler
        unit(sd21, "euler-a", DEFAULT_PROMPTS[1], 0.99),  # another prompt
    ]
    (row,) = beside_original(images)
    assert row["original_cosine"] == 0.3972 and row["ours_n"] == 2
    assert row["ours_cosine"] == pytest.approx(0.32)
    assert beside_original([])[0]["ours_cosine"] is None


def test_lora_source_gives_load_lora_weights_a_folder_or_repo_and_a_file_name(tmp_path):
    from inference.eval.generators import lora_source

    (tmp_path / "my-style.safetensors").write_bytes(b"")
    assert lora_source(str(tmp_path / "my-style.safetensors")) == (
        str(tmp_path),
        {"weight_name": "my-style.safetensors"},
    )
    assert lora_source(str(tmp_path)) == (str(tmp_path), {})
    assert lora_source("ehristoforu/dalle-3-xl-v2") == ("ehristoforu/dalle-3-xl-v2", {})
    assert lora_source("ehristoforu/dalle-3-xl-v2/dalle-3-xl-lora-v2.safetensors") == (
        "ehristoforu/dalle-3-xl-v2",
        {"weight_name": "dalle-3-xl-lora-v2.safetensors"},
    )
