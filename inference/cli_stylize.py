"""`python -m inference stylize PHOTO`: the album without Telegram. Prints the caption and the files."""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.styles import ARTISTS, STYLES


def add_stylize_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "stylize",
        help="paint a photo in the artists' styles (no Telegram)",
        description="Caption PHOTO with BLIP and paint it in each style. Models come from MODELS "
        "(sd15 | tiny | sd15-random), DATA_DIR and DEVICE, as for the worker.",
        epilog="example: MODELS=tiny python -m inference stylize me.jpg --style vangogh --variants 2 --out out/",
    )
    parser.add_argument("photo", type=Path, metavar="PHOTO", help="a JPEG/PNG/WebP/GIF photo")
    parser.add_argument(
        "--style",
        dest="styles",
        action="append",
        choices=sorted(STYLES),
        metavar="STYLE",
        help=f"a style id, repeatable (default: {' '.join(ARTISTS)}); one of: {', '.join(STYLES)}",
    )
    parser.add_argument("--variants", type=int, default=1, help="pictures per style (default 1)")
    parser.add_argument(
        "--seed", type=int, default=0, help="same photo + styles + seed = same pictures (default 0)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="denoising steps before strength (default 30)"
    )
    parser.add_argument(
        "--mode",
        choices=("img2img", "text2img"),
        default="img2img",
        help="img2img keeps the photo's layout; text2img paints from the caption only",
    )
    parser.add_argument("--caption", default=None, help="use this caption instead of BLIP's")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="at most this many pictures per UNet batch"
    )
    parser.add_argument(
        "--fast", action="store_true", help="the preset's few-step schedule (fast mode; ignores --steps)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    parser.add_argument(
        "--out", type=Path, default=Path("stylized"), help="output folder (default ./stylized)"
    )
    parser.set_defaults(func=run_stylize)
    return parser


def run_stylize(args: argparse.Namespace) -> int:
    """Raises JobError for a bad photo or missing weights; `python -m inference` prints it as one line."""
    from contract.images import load_photo
    from inference.models import load_models
    from inference.settings import InferenceSettings
    from inference.stylize import stylize
    from jobs.errors import BAD_REQUEST, JobError

    if not args.photo.is_file():
        raise JobError(BAD_REQUEST, f"no such file: {args.photo}")
    photo = load_photo(args.photo)  # before loading models: a bad photo fails in a second
    settings = InferenceSettings.from_env()
    if args.device:
        settings.device = args.device
    models = load_models(settings)
    result = stylize(
        models,
        photo,
        styles=tuple(args.styles or ARTISTS),
        variants=args.variants,
        seed=args.seed,
        steps=args.steps,
        mode=args.mode,
        caption=args.caption,
        max_batch=args.max_batch,
        fast=args.fast,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"caption: {result.caption}")
    stem = args.photo.stem
    for i, (style, image) in enumerate(result.images):
        path = args.out / f"{stem}_{i:02d}_{style}.png"
        image.save(path)
        print(path)
    print(f"{len(result.images)} pictures in {result.seconds:.2f}s ({models.preset.name} on {models.device})")
    return 0
