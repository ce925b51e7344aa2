"""How long does torch.compile of the SD 1.5 UNet take here, cold and with a warm cache, and what does it buy
under our CUDA graph capture? Prints timestamped lines as it goes (a run cut short still says how far it
got) and a JSON line at the end. Usage (GPU, MODELS=sd15-random, DATA_DIR with the built models):

    TORCHINDUCTOR_CACHE_DIR=... python scripts/compile_probe.py [--dynamic-hw] [--mode MODE] [--vae]

Static shapes by default (batch 8, 64x64 latents; then a second shape, batch 8 80x64, to see what a new
bucket costs); --dynamic-hw marks the latent height and width dynamic so one compile serves all buckets.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from inference.bench_parts import gpu_time
from inference.graphs import GraphedUNet, preparing
from inference.models import load_models
from inference.settings import InferenceSettings

T0 = time.perf_counter()
out: dict = {}


def say(text: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {text}", flush=True)


def first_call(fn, *args) -> float:
    """Seconds of the first call (the compile, or the load from the cache), rounded."""
    started = time.perf_counter()
    fn(*args)
    torch.cuda.synchronize()
    return round(time.perf_counter() - started, 1)


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> None:
    import torch._inductor.config as inductor_config

    inductor_config.conv_1x1_as_mm = True
    settings = InferenceSettings.from_env()
    settings.compile = False  # the probe compiles by hand
    models = load_models(settings, roles=("base",))
    unet, vae = models.txt2img.unet, models.txt2img.vae
    out["load_s"] = round(time.perf_counter() - T0, 1)
    say("loaded")
    mode = arg("--mode", "default")
    dynamic_hw = "--dynamic-hw" in sys.argv
    x = torch.randn(8, 4, 64, 64, device="cuda", dtype=torch.float16)
    t = torch.tensor(500, device="cuda")
    e = torch.randn(8, 77, 768, device="cuda", dtype=torch.float16)
    with torch.inference_mode():
        fn = torch.compile(
            lambda x, t, e: unet(x, t, encoder_hidden_states=e, return_dict=False)[0],
            mode=mode,
            dynamic=False,
        )
        if dynamic_hw:
            torch._dynamo.mark_dynamic(x, 2)
            torch._dynamo.mark_dynamic(x, 3)
        out["first_call_s"] = first_call(fn, x, t, e)
        say(f"compiled: first call {out['first_call_s']} s")
        out["compiled_step_ms"] = round(gpu_time(lambda: fn(x, t, e), 20) * 1000, 2)
        if "cudagraphs" not in mode and mode != "reduce-overhead":
            graphed = GraphedUNet(unet, fn)
            with preparing():  # the capture may use the compiled forward only while preparing
                graphed(x, t, e)
            out["compiled_graphed_step_ms"] = round(gpu_time(lambda: graphed(x, t, e), 20) * 1000, 2)
        eager = GraphedUNet(unet)
        out["eager_graphed_step_ms"] = round(gpu_time(lambda: eager(x, t, e), 20) * 1000, 2)
        diff = (fn(x, t, e).float() - eager(x, t, e).float()).abs()
        out["compiled_vs_eager_maxdiff"] = float(diff.max())
        say(json.dumps(out))
        x2 = torch.randn(8, 4, 80, 64, device="cuda", dtype=torch.float16)
        if dynamic_hw:
            torch._dynamo.mark_dynamic(x2, 2)
            torch._dynamo.mark_dynamic(x2, 3)
        out["second_shape_s"] = first_call(fn, x2, t, e)
        out["second_shape_step_ms"] = round(gpu_time(lambda: fn(x2, t, e), 10) * 1000, 2)
        say(json.dumps(out))
        if "--vae" in sys.argv:
            z = torch.randn(4, 4, 64, 64, device="cuda", dtype=torch.float16)
            dec = torch.compile(lambda z: vae.decode(z, return_dict=False)[0], mode=mode, dynamic=False)
            out["vae_first_call_s"] = first_call(dec, z)
            out["vae_decode4_compiled_ms"] = round(gpu_time(lambda: dec(z), 5) * 1000, 2)
            out["vae_decode4_eager_ms"] = round(gpu_time(lambda: vae.decode(z), 5) * 1000, 2)
    out["total_s"] = round(time.perf_counter() - T0, 1)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
