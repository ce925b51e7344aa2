"""Random-weight twins of the real models, built in code and saved with `save_pretrained`.

Two sizes share one code path:
- `tiny`: a few channels everywhere, for tests and plumbing demos on CPU (images are noise);
- `sd15-random`: the real SD 1.5 / BLIP-large / BLIP-vqa-base / ControlNet shapes, for GPU benchmarks.

Each role is written under `<models_dir>/<preset>/<role>/` (the base role as a full diffusers pipeline
folder), once: a build goes to a temp dir beside it and is renamed into place with a `.complete` marker,
so two processes building at once never leave a half-written folder. Seeds are fixed, so `tiny` is
identical run to run. The tokenizers are generated too (no hub access): a byte-level BPE vocab with no
merges for CLIP, a small lowercase word list for BLIP's BERT tokenizer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

import torch

BUILD_VERSION = 2  # bump when a builder changes what it writes: stale caches are rebuilt
# A builder of one role changed: only that role is rebuilt (the control twin's output convs are not zero).
ROLE_VERSIONS = {"control": ".control3"}


@dataclass(frozen=True)
class TwinSpec:
    unet: dict
    vae: dict
    clip_text: dict
    control: dict
    taesd: dict  # AutoencoderTiny: fast mode's autoencoder (the `fast_vae` role)
    blip_caption_vision: dict
    blip_vqa_vision: dict
    blip_text: dict  # shared by caption and vqa text towers; encoder_hidden_size set per vision tower
    blip_image_size: int
    full_bert_vocab: bool  # sd15-random pads the BERT vocab to the real size (30524)
    save_dtype: torch.dtype = torch.float32
    extra: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        blob = json.dumps([BUILD_VERSION, repr(self)], sort_keys=True, default=str)
        return sha256(blob.encode()).hexdigest()[:16]


_TINY_UNET_BLOCKS = dict(
    block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    layers_per_block=1,
    cross_attention_dim=32,
    attention_head_dim=(2, 4),
    norm_num_groups=32,
)
_SD15_UNET_BLOCKS = dict(
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)
_CONTROL_KEYS = (
    "block_out_channels",
    "down_block_types",
    "layers_per_block",
    "cross_attention_dim",
    "attention_head_dim",
    "norm_num_groups",
)

SPECS: dict[str, TwinSpec] = {
    "tiny": TwinSpec(
        unet=dict(sample_size=16, in_channels=4, out_channels=4, **_TINY_UNET_BLOCKS),
        # Four blocks = 8x downscale like the real VAE: a 2-block VAE makes the latent 16x larger and
        # the UNet that much slower.
        vae=dict(
            sample_size=128,
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 16, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            norm_num_groups=8,
        ),
        clip_text=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
        ),
        control=dict(
            conditioning_embedding_out_channels=(8, 8, 16, 16),
            **{k: _TINY_UNET_BLOCKS[k] for k in _CONTROL_KEYS},
        ),
        taesd=dict(
            encoder_block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            num_encoder_blocks=(1, 1, 1, 1),
            num_decoder_blocks=(1, 1, 1, 1),
        ),
        blip_caption_vision=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        blip_vqa_vision=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        blip_text=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
        ),
        blip_image_size=32,
        full_bert_vocab=False,
    ),
    "sd15-random": TwinSpec(
        unet=dict(sample_size=64, in_channels=4, out_channels=4, **_SD15_UNET_BLOCKS),
        vae=dict(
            sample_size=512,
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            norm_num_groups=32,
        ),
        # CLIP ViT-L/14 text tower (SD 1.5's text encoder); vocab size is the real one.
        clip_text=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            projection_dim=768,
            vocab_size=49408,
        ),
        control=dict(
            conditioning_embedding_out_channels=(16, 32, 96, 256),
            **{k: _SD15_UNET_BLOCKS[k] for k in _CONTROL_KEYS},
        ),
        taesd={},  # madebyollin/taesd's config is AutoencoderTiny's default
        # BLIP-large: ViT-L/16 at 384 px; blip-vqa-base: ViT-B/16 at 384 px.
        blip_caption_vision=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=384,
            patch_size=16,
        ),
        blip_vqa_vision=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=384,
            patch_size=16,
        ),
        blip_text=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=512,
        ),
        blip_image_size=384,
        full_bert_vocab=True,
        save_dtype=torch.float16,  # halves the write; loading casts to the device's dtype anyway
    ),
}


# --- generated tokenizers ---------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_clip_tokenizer_files(folder: Path) -> int:
    """vocab.json + merges.txt for a small byte-level BPE. Returns the vocab size.

    Every byte is a token, and merges (left to right) make the caption and style-prompt words whole
    tokens, so prompts fit CLIP's 77 tokens as they do with the real vocab.
    """
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    ranks: dict[tuple[str, str], int] = {}
    for word in _clip_words():
        # Apply the merges so far (as the tokenizer will), then chain the leftover parts left to right:
        # later merges rank after these, so the word always ends as one token.
        parts = _apply_bpe([*word[:-1], word[-1] + "</w>"], ranks)
        while len(parts) > 1:
            ranks[(parts[0], parts[1])] = len(ranks)
            tokens.append(parts[0] + parts[1])
            parts = [parts[0] + parts[1], *parts[2:]]
    merges = [f"{a} {b}" for (a, b), _ in sorted(ranks.items(), key=lambda kv: kv[1])]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return len(vocab)


def _apply_bpe(parts: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    while len(parts) > 1:
        pairs = [(ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(parts, parts[1:], strict=False))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        parts = [*parts[:i], parts[i] + parts[i + 1], *parts[i + 2 :]]
    return parts


def _clip_words() -> list[str]:
    from contract.styles import STYLES

    text = " ".join([" ".join(_WORDS)] + [f"{s.prompt} {s.negative}" for s in STYLES.values()])
    return list(dict.fromkeys(re.findall(r"[a-z]+", text.lower())))


_WORDS = """
a an the of with in on at and or to from by for is are his her their its this that
man woman person people boy girl child baby kid men women lady guy couple family friends
portrait photo photography picture painting drawing image close up closeup selfie face head
smiling smile laughing looking standing sitting wearing holding posing walking
hair long short black white red blue green yellow brown gray grey pink purple orange dark light
shirt jacket dress hat cap glasses sunglasses suit tie scarf coat sweater hoodie beard mustache
background wall street city park beach sea sky tree trees room table chair car dog cat window
young old happy sad front side camera outdoors indoors night day sun snow water grass flowers
yes no one two three four
""".split()  # noqa: SIM905 (a word list reads best as text)


def bert_vocab(full: bool) -> list[str]:
    """BLIP's BERT vocab layout: specials, words, then [DEC] (BLIP's bos) and [ENC] last.

    `full` pads with [unusedN] to BERT's 30522 + 2, so ids match the real BLIP config.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = list(dict.fromkeys(_WORDS))
    tokens = specials + words
    if full:
        tokens += [f"[unused{i}]" for i in range(30522 - len(tokens))]
    return tokens + ["[DEC]", "[ENC]"]


def _bert_tokenizer(folder: Path, full: bool):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(bert_vocab(full)) + "\n", encoding="utf-8")
    return BertTokenizer.from_pretrained(folder, bos_token="[DEC]", do_lower_case=True, model_max_length=512)


# --- builders, one per role -------------------------------------------------------------------------


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def build_base(spec: TwinSpec, out: Path, device: str = "cpu") -> None:
    """A full diffusers StableDiffusionPipeline folder (model_index.json, unet/, vae/, text_encoder/...)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = out / "_tokenizer_src"
    vocab_size = write_clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77)
    clip_kwargs = {"vocab_size": vocab_size, **spec.clip_text}
    text_config = CLIPTextConfig(
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **clip_kwargs,
    )
    with torch.device(device):
        _seeded(0)
        unet = UNet2DConditionModel(**spec.unet)
        _seeded(1)
        vae = AutoencoderKL(**spec.vae)
        _seeded(2)
        text_encoder = CLIPTextModel(text_config)
    # SD 1.5's own scheduler config; the loader swaps in DPM-Solver++ exactly as for real weights.
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if spec.save_dtype != torch.float32:
        pipe.to(dtype=spec.save_dtype)
    pipe.save_pretrained(out)
    # Keep the slow-tokenizer files next to tokenizer.json, for older transformers.
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tok_dir / name, out / "tokenizer" / name)
    shutil.rmtree(tok_dir)


def _blip_processor(spec: TwinSpec, out: Path):
    from transformers import BlipImageProcessor, BlipProcessor

    tokenizer = _bert_tokenizer(out / "_tokenizer_src", spec.full_bert_vocab)
    size = spec.blip_image_size
    image_processor = BlipImageProcessor(
        size={"height": size, "width": size},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    return BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _blip_config(spec: TwinSpec, vision: dict, tokenizer):
    from transformers import BlipConfig, BlipTextConfig, BlipVisionConfig

    text = BlipTextConfig(
        vocab_size=len(tokenizer),
        encoder_hidden_size=vision["hidden_size"],
        pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **spec.blip_text,
    )
    return BlipConfig(text_config=text.to_dict(), vision_config=BlipVisionConfig(**vision).to_dict())


def _build_blip(model_cls_name: str, vision_key: str, seed: int):
    def build(spec: TwinSpec, out: Path, device: str = "cpu") -> None:
        import transformers

        processor = _blip_processor(spec, out)
        config = _blip_config(spec, getattr(spec, vision_key), processor.tokenizer)
        with torch.device(device):
            _seeded(seed)
            model = getattr(transformers, model_cls_name)(config)
        model.to(spec.save_dtype).save_pretrained(out)  # transformers casts quietly
        processor.save_pretrained(out)
        (out / "vocab.txt").write_bytes((out / "_tokenizer_src" / "vocab.txt").read_bytes())
        shutil.rmtree(out / "_tokenizer_src")

    return build


def build_control(spec: TwinSpec, out: Path, device: str = "cpu") -> None:
    from diffusers import ControlNetModel

    with torch.device(device):
        _seeded(5)
        model = ControlNetModel(in_channels=4, **spec.control)
        # diffusers starts a ControlNet's output convolutions at zero (training grows them from there), so a
        # fresh one changes nothing and no test could tell whether the edges reach the UNet. A trained one's
        # are not zero. He-normal weights (seeded like the rest) also keep the edges' signal alive through the
        # eight convolutions of the conditioning embedding, where default-initialised ones shrink it ~1000x.
        convs = [m for m in model.controlnet_cond_embedding.modules() if isinstance(m, torch.nn.Conv2d)]
        for conv in [*convs, *model.controlnet_down_blocks, model.controlnet_mid_block]:
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    if spec.save_dtype != torch.float32:
        model.to(spec.save_dtype)
    model.save_pretrained(out)


def build_taesd(spec: TwinSpec, out: Path, device: str = "cpu") -> None:
    from diffusers import AutoencoderTiny

    with torch.device(device):
        _seeded(6)
        model = AutoencoderTiny(**spec.taesd)
    if spec.save_dtype != torch.float32:
        model.to(spec.save_dtype)
    model.save_pretrained(out)


BUILDERS: dict[str, Callable[[TwinSpec, Path, str], None]] = {
    "base": build_base,
    "caption": _build_blip("BlipForConditionalGeneration", "blip_caption_vision", seed=3),
    "vqa": _build_blip("BlipForQuestionAnswering", "blip_vqa_vision", seed=4),
    "control": build_control,
    "fast_vae": build_taesd,
}


# --- build once, atomically ---------------------------------------------------------------------------


def _is_complete(folder: Path, fingerprint: str) -> bool:
    marker = folder / ".complete"
    try:
        return json.loads(marker.read_text())["fingerprint"] == fingerprint
    except (OSError, ValueError, KeyError):
        return False


def ensure_built(preset: str, role: str, models_dir: Path, device: str = "cpu") -> Path:
    """Build `<models_dir>/<preset>/<role>/` unless a complete, current build is already there."""
    spec = SPECS[preset]
    final = Path(models_dir) / preset / role
    fingerprint = spec.fingerprint() + ROLE_VERSIONS.get(role, "")
    return build_atomically(
        final, fingerprint, lambda tmp: BUILDERS[role](spec, tmp, device), preset=preset, role=role
    )


def build_atomically(final: Path, fingerprint: str, build: Callable[[Path], None], **meta: str) -> Path:
    """Run `build(tmp)` in a temporary sibling, mark it complete, rename it into place.

    A crash never leaves half a model behind, two processes building at once both end with one complete
    folder, and a build whose fingerprint changed (a builder was edited) is redone.
    """
    if _is_complete(final, fingerprint):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.building.", dir=final.parent))
    try:
        build(tmp)
        (tmp / ".complete").write_text(json.dumps({"fingerprint": fingerprint, **meta}))
        _move_into_place(tmp, final, fingerprint)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _move_into_place(tmp: Path, final: Path, fingerprint: str) -> None:
    try:
        os.rename(tmp, final)
        return
    except OSError:
        if _is_complete(final, fingerprint):
            return  # another process finished the same build first: use theirs
    # A stale or half-deleted folder is in the way: move it aside (atomic), then take its place.
    trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.stale.", dir=final.parent))
    with contextlib.suppress(OSError):
        os.rename(final, trash / "old")
    try:
        os.rename(tmp, final)
    except OSError:
        if not _is_complete(final, fingerprint):
            raise
    shutil.rmtree(trash, ignore_errors=True)


# --- SDXL twin and a LoRA for it (the models study's SDXL + LoRA row) -------------------------------------

EVAL_TWINS_BUILD_VERSION = 1  # bump when build_sdxl, build_sdxl_lora or build_biggan changes what it writes


def build_sdxl(spec: TwinSpec, out: Path) -> None:
    """A StableDiffusionXLPipeline folder shaped like diffusers' own SDXL test components: two CLIP text
    towers (the second with a projection, whose pooled output and the six size/crop ids form the UNet's
    `text_time` embedding), a UNet with linear-projection attention, the preset's VAE and tokenizer."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tok_dir = out / "_tokenizer_src"
    vocab_size = write_clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77)
    text_config = CLIPTextConfig(
        max_position_embeddings=77,
        hidden_act="gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**spec.clip_text, "vocab_size": vocab_size},
    )
    time_embed_dim = 8
    _seeded(20)
    unet = UNet2DConditionModel(
        sample_size=spec.unet["sample_size"],
        in_channels=4,
        out_channels=4,
        **{
            **_TINY_UNET_BLOCKS,
            "cross_attention_dim": 2 * text_config.hidden_size,
        },  # both towers, concatenated
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * time_embed_dim + text_config.projection_dim,
    )
    _seeded(21)
    vae = AutoencoderKL(**spec.vae)
    _seeded(22)
    text_encoder = CLIPTextModel(text_config)
    _seeded(23)
    text_encoder_2 = CLIPTextModelWithProjection(text_config)
    # SDXL base's own scheduler config
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
    )
    StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    ).save_pretrained(out)
    shutil.rmtree(tok_dir)


def build_sdxl_lora(base: Path, out: Path, rank: int = 4) -> None:
    """A random LoRA on the SDXL twin's UNet attention, written by `save_lora_weights` as SDXL LoRAs on the
    hub are, so `load_lora_weights` reads it the same way. B is random too (peft's default makes it zero,
    a LoRA that changes nothing), so a run with it differs from the bare base."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    _seeded(24)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=targets))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionXLPipeline.save_lora_weights(out, unet_lora_layers=layers)


def ensure_sdxl_twin(models_dir: Path, preset: str = "tiny") -> tuple[Path, Path]:
    """(pipeline folder, LoRA folder) of the SDXL twin under `<models_dir>/<preset>/`, built once."""
    spec = SPECS[preset]
    fingerprint = f"{spec.fingerprint()}/sdxl-{EVAL_TWINS_BUILD_VERSION}"
    root = Path(models_dir) / preset
    base = build_atomically(
        root / "sdxl", fingerprint, lambda tmp: build_sdxl(spec, tmp), preset=preset, role="sdxl"
    )
    lora = build_atomically(
        root / "sdxl-lora",
        fingerprint,
        lambda tmp: build_sdxl_lora(base, tmp),
        preset=preset,
        role="sdxl-lora",
    )
    return base, lora


# --- BigGAN twin (the models study's GAN row) -------------------------------------------------------------

# 64 px, 4 channels wide, 1000 classes: BigGAN-deep's layout (16 → 1 channel multiples, attention), toy-sized.
BIGGAN_TINY_CONFIG = dict(
    output_dim=64,
    z_dim=16,
    class_embed_dim=16,
    channel_width=4,
    layers=[[True, 16, 8], [True, 8, 4], [True, 4, 2], [True, 2, 1]],
    attention_layer_position=2,
)


def build_biggan(out: Path) -> None:
    """Written as the published checkpoints are (config.json + pytorch_model.bin), for BigGAN.from_pretrained."""
    from inference.eval.biggan import BigGAN, BigGANConfig

    config = BigGANConfig(**BIGGAN_TINY_CONFIG)
    _seeded(30)
    model = BigGAN(config)
    # nn.Linear's default init (±0.03) gives class embeddings too small to change a pixel after uint8
    # rounding; unit-scale ones make class, seed and truncation each change the picture, as they must.
    torch.nn.init.normal_(model.embeddings.weight)
    # Spectral norm's u, v start random and eval mode never refines them, so sigma would be a random number
    # and the activations overflow. A few power iterations (one per training-mode forward) make sigma the
    # real spectral norm, as the published weights' u, v already are.
    model.train()
    with torch.no_grad():
        for _ in range(10):
            model(torch.randn(2, config.z_dim), torch.eye(config.num_classes)[:2], 0.4)
    model.eval().save_pretrained(out)


def ensure_biggan_twin(models_dir: Path, preset: str = "tiny") -> Path:
    fingerprint = json.dumps([EVAL_TWINS_BUILD_VERSION, BIGGAN_TINY_CONFIG], sort_keys=True)
    return build_atomically(Path(models_dir) / preset / "biggan", fingerprint, build_biggan, role="biggan")
