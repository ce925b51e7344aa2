"""`python -m inference`: the worker (default) and the command-line tools.

python -m inference [worker] [--device cuda:1]    run a worker on the shared database
python -m inference stylize PHOTO [--style S ...]  four styled variants of a photo, no Telegram
python -m inference bench                          GPU benchmark (MODELS=sd15-random)
python -m inference train DIR --class man ...      a personal LoRA from a folder of selfies
python -m inference portrait --lora L "prompt"     portraits with a LoRA
python -m inference pose REF --lora L "scene"      portraits with a LoRA in the pose of a reference photo
python -m inference eval <study> ...               the evaluation studies (docs/evaluation.md)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from contract.settings import CONFIG_ERROR_EXIT
from inference.settings import InferenceSettings

# One growing segment per pool instead of a cached block of every size the album's shapes ask for: before
# any CUDA use, so the worker, the bench and the tools all get it; PYTORCH_CUDA_ALLOC_CONF set by the user
# wins. On the H200 the worker held 6 GiB allocated at its peak but 10.5 GiB reserved (docs/benchmarks.md).
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

# (module, function adding the subparser). These modules import torch and the rest lazily, inside
# their run functions, so building the parser stays cheap.
SUBCOMMANDS = (
    ("inference.cli_stylize", "add_stylize_parser"),
    ("inference.bench", "add_bench_parser"),
    ("inference.cli_train", "add_train_parser"),
    ("inference.cli_train", "add_portrait_parser"),
    ("inference.cli_pose", "add_pose_parser"),
    ("inference.eval.cli", "add_eval_parser"),
)


def add_worker_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="claim and run jobs from DATA_DIR's database (the default)")
    add_worker_arguments(parser)
    parser.set_defaults(func=run_worker)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: DEVICE or auto)")
    parser.add_argument(
        "--lease", type=float, default=60.0, help="seconds a claimed job is held without a heartbeat"
    )
    parser.add_argument(
        "--exit-when-idle", action="store_true", help="stop when the queue is empty (batch runs)"
    )


def run_worker(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from inference.worker import Worker
    from jobs.errors import MODEL_MISSING, JobError

    worker = Worker(settings, lease_s=args.lease)
    worker.install_signal_handlers()
    try:
        worker.load()
    except (JobError, RuntimeError) as error:  # missing weights, DEVICE=cuda without CUDA
        if isinstance(error, JobError) and error.code != MODEL_MISSING:
            raise
        # One line for the operator; the distinct status tells the supervisor not to restart at once.
        text = f"{error.code}: {error.message}" if isinstance(error, JobError) else str(error)
        print(f"error: {text}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    worker.run_forever(exit_when_idle=args.exit_when_idle)
    return 0


def settings_from(args: argparse.Namespace) -> InferenceSettings:
    return InferenceSettings.for_process(getattr(args, "device", None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="artbooth inference: the worker and command-line tools. "
        "Settings come from the environment or .env: DATA_DIR, MODELS (sd15 | tiny | sd15-random), DEVICE.",
    )
    add_worker_arguments(parser)
    parser.set_defaults(func=run_worker)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_worker_parser(subparsers)
    for module_name, adder in SUBCOMMANDS:
        getattr(importlib.import_module(module_name), adder)(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from jobs.errors import JobError

    try:
        return args.func(args) or 0
    except JobError as error:
        # Missing weights, a bad photo...: one line that says what to do, no traceback.
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
