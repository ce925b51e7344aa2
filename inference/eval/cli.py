"""`python -m inference eval <study> …`: the three studies of docs/evaluation.md.

Each writes REPORT_DIR/<study>/report.md, PNG charts and results.json (every number; a rerun resumes
from it). `--limit N` takes the first N photos (style-match) or prompts (models, dreambooth) for a quick pass.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from contract.kinds import DEFAULT_TOKEN
from inference.settings import InferenceSettings

STUDIES = ("style-match", "models", "dreambooth")


def add_eval_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluation studies: style-match, models, dreambooth")
    studies = parser.add_subparsers(title="studies", dest="study", metavar="STUDY", required=True)

    style = studies.add_parser(
        "style-match", help="VQA/CLIP style match of stylized photos, both architectures"
    )
    _common(style)
    style.add_argument(
        "--photos", type=Path, help="folder of photos (default: scikit-image's bundled photos)"
    )
    style.add_argument("--styles", nargs="+", help="style ids (default: every style in contract/styles.py)")
    style.add_argument(
        "--arch",
        nargs="+",
        choices=("img2img", "text2img", "controlnet"),
        default=["img2img", "text2img"],
        help="controlnet: img2img + the photo's Canny edges through the ControlNet (loads it)",
    )
    style.add_argument(
        "--fast",
        action="store_true",
        help="also each architecture on fast mode's few-step schedule, beside it (not controlnet)",
    )

    models = studies.add_parser("models", help="CLIP score for base models × schedulers")
    _common(models)
    models.add_argument(
        "--prompts", type=Path, help="text file, one prompt per line (default: the original study's 3)"
    )
    models.add_argument(
        "--models",
        nargs="+",
        metavar="[FAMILY:]ID[+LORA]",
        help="SD hub ids or dirs; sdxl:BASE[+LORA]; biggan:NAME_OR_DIR (default: the study's seven)",
    )
    models.add_argument("--schedulers", nargs="+", help="euler euler-a ddim dpm++2m (default: all four)")
    models.add_argument("--n", type=int, default=4, help="images (seeds) per prompt and cell (default 4)")
    models.add_argument("--guidance", type=float, default=7.5)
    models.add_argument(
        "--truncation", type=float, default=0.4, help="BigGAN truncation in (0, 1] (default 0.4)"
    )

    booth = studies.add_parser("dreambooth", help="DINO / CLIP-I / CLIP-T of LoRAs at several ranks")
    _common(booth)
    booth.add_argument("--photos", type=Path, help="the subject's instance photos (default: the astronaut)")
    booth.add_argument(
        "--prompts", type=Path, help="templates with {0}=token {1}=class (default: DreamBench 25)"
    )
    booth.add_argument("--ranks", nargs="+", type=int, default=[4, 32, 64, 128])
    booth.add_argument("--train-steps", type=int, help="training steps per LoRA (default: TrainConfig's)")
    booth.add_argument(
        "--token", default=DEFAULT_TOKEN, help=f"the rare identifier token (default {DEFAULT_TOKEN})"
    )
    booth.add_argument("--class-name", default="person", help="the subject's class noun (default person)")
    booth.add_argument("--n", type=int, default=4, help="images (seeds) per prompt (default 4)")
    booth.add_argument("--guidance", type=float, default=7.5)
    booth.add_argument("--full", action="store_true", help="also fine-tune the whole UNet (not implemented)")
    parser.set_defaults(func=run_eval)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, help="denoising steps (default: the preset's, 30 for sd15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="first N photos / prompts only: a quick pass")
    parser.add_argument("--report-dir", type=Path, help="default: $REPORT_DIR or ./reports")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")


def report_dir(args: argparse.Namespace) -> Path:
    return Path(args.report_dir or os.environ.get("REPORT_DIR") or "reports")


def run_eval(args: argparse.Namespace, settings: InferenceSettings | None = None) -> int:
    from inference.presets import get_preset

    settings = settings or InferenceSettings.from_env()
    if getattr(args, "device", None):
        settings.device = args.device
    steps = args.steps or get_preset(settings.models).steps
    out = report_dir(args) / args.study
    summary = _RUNNERS[args.study](settings, out, args, steps)
    print(f"{args.study}: {out / 'report.md'} ({len(summary.get('cells', {}))} cells)")
    return 0


def _style_match(settings: InferenceSettings, out: Path, args: argparse.Namespace, steps: int) -> dict:
    from contract.styles import STYLES
    from inference.eval import style_match
    from inference.eval.photos import load_photos

    styles = [s.strip().lower() for s in args.styles] if args.styles else list(STYLES)
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise SystemExit(f"unknown style(s) {', '.join(unknown)}; known: {', '.join(STYLES)}")
    study = style_match.StyleMatchStudy(
        styles=styles,
        architectures=list(args.arch) + ([f"{a}{style_match.FAST}" for a in args.arch] if args.fast else []),
        steps=steps,
        seed=args.seed,
        photos_dir=str(args.photos.resolve()) if args.photos else None,
    )
    return style_match.run(settings, out, study, load_photos(args.photos, args.limit))


def _models(settings: InferenceSettings, out: Path, args: argparse.Namespace, steps: int) -> dict:
    from inference.eval import models_study
    from inference.eval.generators import SCHEDULERS
    from inference.eval.model_specs import parse_model_spec
    from inference.eval.original_study import DEFAULT_PROMPTS
    from inference.eval.photos import load_prompts

    schedulers = args.schedulers or list(SCHEDULERS)
    unknown = [s for s in schedulers if s not in SCHEDULERS]
    if unknown:
        raise SystemExit(f"unknown scheduler(s) {', '.join(unknown)}; known: {', '.join(SCHEDULERS)}")
    if not 0 < args.truncation <= 1:
        raise SystemExit(f"--truncation must be in (0, 1], got {args.truncation}")
    models = args.models or models_study.default_models(settings)
    for model in models:
        try:
            parse_model_spec(model)
        except ValueError as error:
            raise SystemExit(str(error)) from None
    study = models_study.ModelsStudy(
        models=models,
        schedulers=schedulers,
        prompts=load_prompts(args.prompts, DEFAULT_PROMPTS, args.limit),
        n=args.n,
        steps=steps,
        seed=args.seed,
        guidance=args.guidance,
        truncation=args.truncation,
    )
    return models_study.run(settings, out, study)


def _dreambooth(settings: InferenceSettings, out: Path, args: argparse.Namespace, steps: int) -> dict:
    from inference.eval import dreambooth_study as db
    from inference.eval.photos import load_photos, load_prompts

    if args.full:
        raise SystemExit("--full (whole-UNet fine-tune) is not implemented yet: see docs/evaluation.md")
    photos = load_photos(args.photos) if args.photos else load_photos(None, 1)
    study = db.DreamBoothStudy(
        ranks=list(args.ranks),
        prompts=load_prompts(args.prompts, db.DREAMBENCH_LIVE, args.limit),
        token=args.token,
        class_name=args.class_name,
        train_steps=args.train_steps,
        n=args.n,
        steps=steps,
        seed=args.seed,
        guidance=args.guidance,
        photos_dir=str(args.photos.resolve()) if args.photos else None,
    )
    return db.run(settings, out, study, photos)


_RUNNERS = {"style-match": _style_match, "models": _models, "dreambooth": _dreambooth}
