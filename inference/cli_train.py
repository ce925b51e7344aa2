"""`python -m inference train DIR --class man --out lora.safetensors` and `… portrait --lora L "prompt"`.

`train --bench` measures what issue #4 asks on a GPU (MODELS=sd15-random): training wall time with the
class-image cache cold and warm, steps/s, peak GPU memory with the inference models resident, and the
latency of 4 portraits; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from contract.kinds import DEFAULT_TOKEN

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic"}


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a personal LoRA from a folder of selfies")
    p.add_argument("dir", nargs="?", type=Path, help="folder of 3-20 photos of one person")
    p.add_argument("--class", dest="cls", default="person", help="class noun: man, woman, person...")
    p.add_argument("--token", default=DEFAULT_TOKEN)
    p.add_argument("--steps", type=int)
    p.add_argument("--rank", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int, help="selfies per step (as many class images join them)")
    p.add_argument("--train-text-encoder", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("lora.safetensors"))
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    p.add_argument("--bench", action="store_true", help="benchmark with 5 synthetic selfies; prints JSON")
    p.add_argument(
        "--bench-batch-sizes",
        type=int,
        nargs="*",
        default=[],
        help="with --bench: also time warm runs at these batch sizes, steps divided to see the same images",
    )
    p.set_defaults(func=run_train)


def add_portrait_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("portrait", help="portraits with a personal LoRA")
    p.add_argument(
        "prompt", help='a scene ("on the moon") or a full prompt ("a photo of sks man on the moon")'
    )
    p.add_argument("--lora", type=Path, required=True)
    p.add_argument("-n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int)
    p.add_argument("--fast", action="store_true", help="fast mode's few-step schedule on top of the LoRA")
    p.add_argument("--out", type=Path, default=Path("portraits"))
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    p.set_defaults(func=run_portrait)


def _settings(args: argparse.Namespace):
    from inference.settings import InferenceSettings

    settings = InferenceSettings.from_env()
    if getattr(args, "device", None):
        settings.device = args.device
    return settings


def _config(args: argparse.Namespace):
    from inference.train import TrainConfig

    names = ("steps", "rank", "lr", "batch_size")
    given = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    return TrainConfig(
        cls=args.cls, token=args.token, seed=args.seed, train_text_encoder=args.train_text_encoder, **given
    )


def read_folder(folder: Path) -> list:
    """Accepted 512×512 face crops; prints each photo's verdict."""
    from contract.faces import check_selfie, image_fingerprint, is_duplicate
    from contract.images import load_photo
    from jobs.errors import JobError

    accepted, fingerprints = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            photo = load_photo(path)
        except (JobError, OSError) as exc:
            print(f"  rejected {path.name}: {getattr(exc, 'code', 'not_an_image')}")
            continue
        check = check_selfie(photo)
        if not check.ok:
            print(f"  rejected {path.name}: {check.code}")
            continue
        fp = image_fingerprint(photo)  # of the whole photo: crops of one photo can shift by a few pixels
        if is_duplicate(fp, fingerprints):
            print(f"  rejected {path.name}: duplicate of an earlier photo")
            continue
        fingerprints.append(fp)
        accepted.append(check.crop)
        print(f"  accepted {path.name}")
    return accepted


def run_train(args: argparse.Namespace) -> int:
    from contract.kinds import MIN_SELFIES
    from inference.models import load_models
    from inference.train.loop import train_lora
    from jobs.errors import TOO_FEW_PHOTOS

    settings = _settings(args)
    if args.bench:
        print(json.dumps(train_bench(settings, _config(args), args.bench_batch_sizes), indent=2))
        return 0
    if args.dir is None or not args.dir.is_dir():
        print("train: DIR must be a folder of photos", file=sys.stderr)
        return 2
    photos = read_folder(args.dir)
    if len(photos) < MIN_SELFIES:
        print(f"{TOO_FEW_PHOTOS}: {len(photos)} usable photos, {MIN_SELFIES} needed", file=sys.stderr)
        return 1
    models = load_models(settings, roles=("base",))

    def progress(event) -> bool:
        eta = f", eta {event.eta_s:.0f}s" if event.eta_s is not None else ""
        loss = f", loss {event.loss:.4f}" if event.loss is not None else ""
        print(f"  {event.phase} {event.done}/{event.total}{loss}{eta}", flush=True)
        return True

    result = train_lora(
        models,
        photos,
        _config(args),
        out=args.out,
        class_cache=settings.data_dir / "class_images",
        progress=progress,
    )
    print(
        f"wrote {result.path} ({result.steps} steps in {result.seconds:.1f}s, {result.steps_per_s:.2f} steps/s)"
    )
    return 0


def run_portrait(args: argparse.Namespace) -> int:
    from inference.models import load_models
    from inference.portrait import STEPS, portrait
    from jobs.errors import JobError

    models = load_models(_settings(args), roles=("base",))
    try:
        result = portrait(
            models,
            args.lora,
            args.prompt,
            n=args.n,
            seed=args.seed,
            steps=args.steps or STEPS,
            fast=args.fast,
        )
    except JobError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(result.images):
        image.save(args.out / f"portrait_{i:02d}.png")
    print(f"{result.prompt!r}: {len(result.images)} images in {result.seconds:.1f}s → {args.out}")
    return 0


def bench_selfies(n: int = 5) -> list:
    """Five "selfies": the astronaut, jittered and flipped (random weights make content irrelevant)."""
    from PIL import Image
    from skimage import data

    face = Image.fromarray(data.astronaut())
    shots = []
    for i in range(n):
        shot = face.rotate(3 * (i - 2), resample=Image.BILINEAR).crop(
            (i * 4, i * 3, 512 - i * 2, 512 - i * 4)
        )
        shots.append((shot.transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else shot).resize((512, 512)))
    return shots


def train_bench(settings, cfg, extra_batch_sizes: list[int] = ()) -> dict:
    """Cold and warm class-image cache runs on the resident models (base + caption, as in the worker)."""
    import torch

    from inference.models import load_models
    from inference.portrait import portrait
    from inference.train.loop import train_lora

    models = load_models(settings)
    cuda = models.device.type == "cuda"
    resident = torch.cuda.memory_allocated(models.device) if cuda else 0
    photos = bench_selfies()
    report: dict = {
        "device": str(models.device),
        "models": settings.models,
        "steps": cfg.resolved(512).steps,
        "batch_size": cfg.batch_size,
        "rank": cfg.rank,
        "resident_gib": round(resident / 2**30, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cache, runs = Path(tmp) / "class_images", {}
        steps = cfg.resolved(512).steps
        configs = [("cold", cfg), ("warm", cfg)] + [
            (f"warm_batch{b}", replace(cfg, batch_size=b, steps=max(1, steps * cfg.batch_size // b)))
            for b in extra_batch_sizes
        ]
        for label, run_cfg in configs:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(models.device)
            result = train_lora(
                models, photos, run_cfg, out=Path(tmp) / f"{label}.safetensors", class_cache=cache
            )
            runs[label] = {
                "batch_size": run_cfg.batch_size,
                "steps": result.steps,
                "wall_s": round(result.seconds, 2),
                "train_loop_s": round(result.train_seconds, 2),
                "steps_per_s": round(result.steps_per_s, 2),
                "class_images_generated": result.class_images_generated,
                "peak_gib": round(torch.cuda.max_memory_allocated(models.device) / 2**30, 2)
                if cuda
                else None,
            }
        report["train"] = runs
        portrait(
            models, Path(tmp) / "warm.safetensors", "on the moon", n=4, steps=2
        )  # load the adapter, warm up
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        shots = portrait(models, Path(tmp) / "warm.safetensors", "on the moon", n=4)
        if cuda:
            torch.cuda.synchronize()
        report["portrait_4_s"] = round(time.perf_counter() - started, 2)
        report["portrait_steps"] = 30
        report["portrait_images"] = len(shots.images)
    return report
