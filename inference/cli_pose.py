"""`python -m inference pose REFERENCE --lora me.safetensors "scene" --out DIR`: /pose without Telegram.

Writes the pictures and the edges map the ControlNet saw (edges.png), so a practitioner can tune the
thresholds (--low/--high), the conditioning scale (--scale) and how long it steers (--control-end) on
their own references.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_pose_parser(subparsers: argparse._SubParsersAction) -> None:
    from contract.kinds import PORTRAITS_PER_JOB

    p = subparsers.add_parser(
        "pose", help="portraits with a LoRA in the pose of a reference photo (ControlNet)"
    )
    p.add_argument("reference", type=Path, help="the photo whose pose and composition to take")
    p.add_argument("scene", nargs="?", default="", help='optional scene, e.g. "as a knight"')
    p.add_argument("--lora", type=Path, required=True)
    p.add_argument("-n", type=int, default=PORTRAITS_PER_JOB)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="denoising steps (default: the pose preset's 20)")
    p.add_argument("--scale", type=float, help="ControlNet conditioning scale (default 0.8)")
    p.add_argument(
        "--control-end",
        type=float,
        help="share of the steps, from the first, the ControlNet steers (default 0.8)",
    )
    p.add_argument("--low", type=int, help="Canny low threshold (default 100)")
    p.add_argument("--high", type=int, help="Canny high threshold (default 200)")
    p.add_argument("--out", type=Path, default=Path("poses"))
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    p.set_defaults(func=run_pose)
    # `pose REF --lora L "scene"`: argparse fills the optional scene (empty) with the first run of
    # positionals, before --lora, and then calls "scene" unrecognised. Take that leftover as the scene.
    plain = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        namespace, extras = plain(args, namespace)
        if not namespace.scene and extras and not extras[0].startswith("-"):
            namespace.scene = extras.pop(0)
        return namespace, extras

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


def run_pose(args: argparse.Namespace) -> int:
    from contract.faces import detect_faces
    from contract.pose import load_reference
    from inference.models import load_models
    from inference.pose import pose_portraits
    from inference.settings import InferenceSettings

    settings = InferenceSettings.from_env()
    if args.device:
        settings.device = args.device
    reference = load_reference(args.reference)  # a JobError is printed as one line by __main__
    if not detect_faces(reference):
        print("note: no face found in the reference: only its composition will carry over", file=sys.stderr)
    models = load_models(settings, roles=("base", "caption"))
    options = dict(
        steps=args.steps,
        conditioning_scale=args.scale,
        control_end=args.control_end,
        low=args.low,
        high=args.high,
    )
    result = pose_portraits(
        models,
        args.lora,
        reference,
        args.scene,
        n=args.n,
        seed=args.seed,
        **{k: v for k, v in options.items() if v is not None},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result.edges.save(args.out / "edges.png")
    for i, image in enumerate(result.images):
        image.save(args.out / f"pose_{i:02d}.png")
    print(f"{result.prompt!r}: {len(result.images)} images in {result.seconds:.1f}s → {args.out}")
    return 0
