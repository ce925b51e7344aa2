"""Does torch.compile of the SD 1.5 UNet (dynamic shapes, as inference.graphs does it) finish here, how
long does it take, and what does it buy? Prints timestamped lines as it goes, so a run cut short still
says how far it got. Usage (GPU, MODELS=sd15-random, DATA_DIR with the built models):

    TORCHINDUCTOR_COMPILE_THREADS=1 python scripts/compile_probe.py [--channels-last]
"""

from __future__ import annotations

import sys
import time

import torch

from inference.bench_parts import gpu_time
from inference.graphs import GraphedUNet, compile_fn
from inference.models import load_models
from inference.settings import InferenceSettings

T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {text}", flush=True)


def main() -> None:
    settings = InferenceSettings.from_env()
    settings.compile = False  # the probe compiles by hand
    models = load_models(settings, roles=("base",))
    unet = models.txt2img.unet
    if "--channels-last" in sys.argv:
        unet.to(memory_format=torch.channels_last)
    say(f"loaded; channels_last={'--channels-last' in sys.argv}")
    x = torch.randn(8, 4, 64, 64, device="cuda", dtype=torch.float16)
    t = torch.tensor(500, device="cuda")
    e = torch.randn(8, 77, 768, device="cuda", dtype=torch.float16)
    with torch.inference_mode():
        eager = GraphedUNet(unet)
        say(f"eager graphed step b8: {gpu_time(lambda: eager(x, t, e), 20) * 1000:.1f} ms")
        fn = compile_fn(lambda x, t, e: unet(x, t, encoder_hidden_states=e, return_dict=False)[0], "UNet")
        fn(x, t, e)
        torch.cuda.synchronize()
        say("compiled (first call done)")
        say(f"compiled step b8: {gpu_time(lambda: fn(x, t, e), 20) * 1000:.1f} ms")
        graphed = GraphedUNet(unet, fn)
        say(f"compiled graphed step b8: {gpu_time(lambda: graphed(x, t, e), 20) * 1000:.1f} ms")
        x2, e2 = torch.randn(4, 4, 80, 64, device="cuda", dtype=torch.float16), e[:4]
        graphed(x2, t, e2)
        say("second shape (batch 4, 640x512) done: no recompile if this is quick")


if __name__ == "__main__":
    main()
