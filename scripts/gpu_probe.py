"""One GPU run's worth of questions that the bench does not ask, each answered on its own (one failing
part does not stop the others). MODELS=sd15-random python scripts/gpu_probe.py OUT.json

- where our album path and plain diffusers part ways in fp16 (every UNet call's inputs and outputs,
  recorded by forward hooks on both UNets, compared call by call);
- the UNet step at batch 8 and 4: graphed NCHW, graphed channels_last, cuDNN autotuning on/off
  (and what a new shape's capture costs with each);
- the VAE decode of 4 and encode of 4, NCHW and channels_last;
- the caption's parts: the processor (CPU), the vision pass, the greedy decoder;
- `stages`: where an album's time goes, stage by stage (prepare, caption, encode, prompts, denoise, decode),
  on the normal and the fast schedule, each stage between two synchronizations;
- `drain`: a fast-album drain by an in-process worker (four aspects, 1600 px JPEGs): where each thread's
  time goes (painting on the main thread, claiming and decoding on the look-ahead thread, writing);
- `sdpa`: the UNet step and VAE decode with each of torch's attention kernels forced;
- `text`: the text encoder eager against its graph replay, and encode_text for an album's prompts;
- `memory`: what the largest bucket (768x512) adds to the peak: the eager UNet at batch 8, its graph's
  pool, the VAE decode of four and of two pictures.

PROBE_PARTS=stages,memory runs only those parts (default: every part).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback

import numpy as np
import torch

from inference.bench import bench_photo
from inference.bench_parts import diffusers_picture, gpu_time, plain_pipeline, psnr
from inference.graphs import GraphedUNet
from inference.models import load_models
from inference.settings import InferenceSettings
from inference.stylize import StylizeItem, encode_image, stylize_batch

T0 = time.perf_counter()
report: dict = {}


def say(text: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {text}", flush=True)


WANTED = [p for p in os.environ.get("PROBE_PARTS", "").split(",") if p]


PARTS: list[tuple[str, object]] = []  # run in order by main(), each on its own


def part(name):
    def wrap(fn):
        PARTS.append((name, fn))
        return fn

    return wrap


def main() -> None:
    """Under `if __name__ == "__main__"`: the drain part's decode processes are spawned, and a spawned
    child imports this file again as its main module."""
    global settings, models, pipe, photo
    settings = InferenceSettings.from_env()
    models = load_models(settings, roles=("base", "caption"))
    pipe = plain_pipeline(models) if not WANTED or "divergence" in WANTED else None
    photo = bench_photo(models.resolution)
    say("loaded")
    for name, fn in PARTS:
        if WANTED and name not in WANTED:
            continue
        say(f"{name} ...")
        try:
            report[name] = fn()
        except Exception:
            report[name] = {"error": traceback.format_exc()[-1500:]}
        say(f"{name}: {json.dumps(report[name])[:2000]}")
        with open(sys.argv[1], "w") as out:
            json.dump(report, out, indent=1)
    say("done")


@part("divergence")
def divergence():
    records: dict[str, list] = {"ours": [], "diffusers": []}

    def hook(key):
        def fn(module, args, kwargs, output):
            x = args[0] if args else kwargs["sample"]
            t = args[1] if len(args) > 1 else kwargs["timestep"]
            e = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
            out = output[0] if isinstance(output, tuple) else output.sample
            records[key].append(
                (x.detach().float().cpu(), float(t), e.detach().float().cpu(), out.detach().float().cpu())
            )

        return fn

    models.settings.cuda_graphs = False
    models._lazy.clear()
    h1 = models.txt2img.unet.register_forward_hook(hook("ours"), with_kwargs=True)
    h2 = pipe.unet.register_forward_hook(hook("diffusers"), with_kwargs=True)
    try:
        ours = stylize_batch(
            models, [StylizeItem(photo, styles=("delaunay",), seed=3, caption="a man")], steps=30
        )[0].images[0][1]
        with torch.inference_mode():
            init = encode_image(pipe, photo, models.device, models.dtype)
            init_ours = encode_image(models.img2img, photo, models.device, models.dtype)
        ref = diffusers_picture(models, pipe, photo, 30)
    finally:
        h1.remove()
        h2.remove()
        models.settings.cuda_graphs = True
        models._lazy.clear()
    a, b = records["ours"], records["diffusers"]
    calls = []
    for i, (ra, rb) in enumerate(zip(a, b, strict=False)):
        calls.append(
            {
                "i": i,
                "t": (ra[1], rb[1]),
                "x_shape": (list(ra[0].shape), list(rb[0].shape)),
                "x_maxdiff": float((ra[0] - rb[0]).abs().max()) if ra[0].shape == rb[0].shape else None,
                "e_maxdiff": float((ra[2] - rb[2]).abs().max()) if ra[2].shape == rb[2].shape else None,
                "out_maxdiff": float((ra[3] - rb[3]).abs().max()) if ra[3].shape == rb[3].shape else None,
                "x_absmax": float(ra[0].abs().max()),
                "out_absmax": float(ra[3].abs().max()),
                "out_nonfinite": int((~torch.isfinite(ra[3])).sum()),
            }
        )
    return {
        "psnr_db": psnr(np.asarray(ref), np.asarray(ours)),
        "calls": (len(a), len(b)),
        "init_maxdiff": float((init.float() - init_ours.float()).abs().max()),
        "per_call": calls[:6] + calls[-2:],
    }


def unet_inputs(batch, h=64, w=64, memory_format=torch.contiguous_format):
    x = torch.randn(batch, 4, h, w, device="cuda", dtype=torch.float16).to(memory_format=memory_format)
    e = torch.randn(batch, 77, 768, device="cuda", dtype=torch.float16)
    return x, torch.tensor(500, device="cuda"), e


def capture_and_step(unet, batch, h, w, memory_format=torch.contiguous_format):
    g = GraphedUNet(unet)
    x, t, e = unet_inputs(batch, h, w, memory_format)
    with torch.inference_mode():
        torch.cuda.synchronize()
        started = time.perf_counter()
        g(x, t, e)
        torch.cuda.synchronize()
        capture = time.perf_counter() - started
        step = gpu_time(lambda: g(x, t, e), 20)
    return {"capture_s": round(capture, 2), "step_ms": round(step * 1000, 2)}


@part("unet")
def unet_part():
    unet = models.txt2img.unet
    out = {}
    torch.backends.cudnn.benchmark = False
    out["b8_64x80_nchw_autotune_off"] = capture_and_step(unet, 8, 64, 80)
    torch.backends.cudnn.benchmark = True
    out["b8_64x80_nchw_autotune_on"] = capture_and_step(unet, 8, 64, 80)
    out["b8_64x64_nchw"] = capture_and_step(unet, 8, 64, 64)
    out["b4_64x64_nchw"] = capture_and_step(unet, 4, 64, 64)
    x, t, e = unet_inputs(8)
    with torch.inference_mode():
        out["b8_eager_ms"] = round(gpu_time(lambda: unet(x, t, encoder_hidden_states=e), 10) * 1000, 2)
    unet.to(memory_format=torch.channels_last)
    try:
        torch.backends.cudnn.benchmark = False
        out["b8_80x64_cl_autotune_off"] = capture_and_step(unet, 8, 80, 64, torch.channels_last)
        torch.backends.cudnn.benchmark = True
        out["b8_64x64_cl"] = capture_and_step(unet, 8, 64, 64, torch.channels_last)
        out["b4_64x64_cl"] = capture_and_step(unet, 4, 64, 64, torch.channels_last)
    finally:
        unet.to(memory_format=torch.contiguous_format)
    try:
        unet.fuse_qkv_projections()
        out["b8_64x64_nchw_fused_qkv"] = capture_and_step(unet, 8, 64, 64)
    finally:
        unet.unfuse_qkv_projections()
    return out


@part("sdpa")
def sdpa_part():
    """The UNet step at batch 8 (512x512 and 768x512) and the VAE decode of four, graphed, with each of
    torch's attention kernels forced (SD 1.5's heads are 40 wide; the VAE's one head is 512), and how far
    each step's output is from the default kernel's."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    unet, vae = models.txt2img.unet, models.txt2img.vae
    backends = {
        "default": None,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }
    out, reference = {}, {}
    for h, w in ((64, 64), (64, 96)):
        x, t, e = unet_inputs(8, h, w)
        for name, backend in backends.items():
            key = f"b8_{h}x{w}_{name}"
            try:
                with sdpa_kernel([backend]) if backend else contextlib.nullcontext(), torch.inference_mode():
                    g = GraphedUNet(unet)
                    y = g(x, t, e)
                    step = gpu_time(lambda g=g, x=x, t=t, e=e: g(x, t, e), 20)
                reference.setdefault((h, w), y)
                diff = float((y.float() - reference[(h, w)].float()).abs().max())
                out[key] = {"step_ms": round(step * 1000, 2), "maxdiff_vs_default": round(diff, 5)}
            except Exception as error:
                out[key] = {"error": str(error).splitlines()[0][:200]}
    z = torch.randn(4, 4, 64, 64, device="cuda", dtype=torch.float16)
    for name, backend in backends.items():
        try:
            with sdpa_kernel([backend]) if backend else contextlib.nullcontext(), torch.inference_mode():
                out[f"vae_decode4_{name}_ms"] = round(gpu_time(lambda: vae.decode(z), 5) * 1000, 2)
        except Exception as error:
            out[f"vae_decode4_{name}"] = {"error": str(error).splitlines()[0][:200]}
    return out


@part("text")
def text_part():
    """The text encoder on 77-token ids: eager against the graph replay (inference.graphs.GraphedText), GPU
    time and host time, and encode_text for an album's prompts end to end."""
    from inference.graphs import GraphedText, last_hidden
    from inference.stylize import encode_text

    encoder = models.txt2img.text_encoder
    out = {}
    for batch in (2, 5, 8):
        ids = torch.randint(0, 49407, (batch, 77), device="cuda")
        graphed = GraphedText(encoder)
        with torch.inference_mode():
            diff = float((graphed(ids).float() - last_hidden(encoder, ids).float()).abs().max())
            runs = (
                ("eager", lambda i=ids: last_hidden(encoder, i)),
                ("graphed", lambda g=graphed, i=ids: g(i)),
            )
            for name, fn in runs:
                torch.cuda.synchronize()
                started = time.perf_counter()
                for _ in range(10):
                    fn()
                torch.cuda.synchronize()
                out[f"b{batch}_{name}_wall_ms"] = round((time.perf_counter() - started) * 100, 2)
                out[f"b{batch}_{name}_gpu_ms"] = round(gpu_time(fn, 10) * 1000, 2)
        out[f"b{batch}_maxdiff"] = round(diff, 5)
    prompts = [f"a man in a hat, painted by artist {i}" for i in range(4)]
    with torch.inference_mode():
        encode_text(models, prompts, ["blurry"] * 4)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(10):
            encode_text(models, prompts, ["blurry"] * 4)
        torch.cuda.synchronize()
    out["encode_text_album_wall_ms"] = round((time.perf_counter() - started) * 100, 2)
    return out


@part("vae")
def vae_part():
    vae = models.txt2img.vae
    z = torch.randn(4, 4, 64, 64, device="cuda", dtype=torch.float16)
    pixels = torch.randn(4, 3, 512, 512, device="cuda", dtype=torch.float16)
    out = {}
    with torch.inference_mode():
        out["decode4_nchw_ms"] = round(gpu_time(lambda: vae.decode(z), 5) * 1000, 2)
        out["encode4_nchw_ms"] = round(gpu_time(lambda: vae.encode(pixels), 5) * 1000, 2)
        out["decode1_nchw_ms"] = round(gpu_time(lambda: vae.decode(z[:1]), 5) * 1000, 2)
        vae.to(memory_format=torch.channels_last)
        try:
            zc = z.to(memory_format=torch.channels_last)
            pc = pixels.to(memory_format=torch.channels_last)
            out["decode4_cl_ms"] = round(gpu_time(lambda: vae.decode(zc), 5) * 1000, 2)
            out["encode4_cl_ms"] = round(gpu_time(lambda: vae.encode(pc), 5) * 1000, 2)
            a = vae.decode(zc)[0].float()
        finally:
            vae.to(memory_format=torch.contiguous_format)
        b = vae.decode(z)[0].float()
        out["cl_vs_nchw_maxdiff"] = float((a - b).abs().max())
        torch.backends.cudnn.benchmark = False
        out["decode4_nchw_autotune_off_ms"] = round(gpu_time(lambda: vae.decode(z), 5) * 1000, 2)
        torch.backends.cudnn.benchmark = True
    return out


@part("caption")
def caption_part():
    cap = models.captioner
    images = [photo]
    out = {}
    cap.caption(images)
    started = time.perf_counter()
    for _ in range(5):
        inputs = cap._inputs(images)
    torch.cuda.synchronize()
    out["processor_wall_ms"] = round((time.perf_counter() - started) / 5 * 1000, 2)
    with torch.inference_mode():
        out["vision_ms"] = round(
            gpu_time(lambda: cap.model.vision_model(pixel_values=inputs["pixel_values"]), 10) * 1000, 2
        )
        embeds = cap.model.vision_model(pixel_values=inputs["pixel_values"])[0]
        prompt = cap._prompt(inputs, 1)
        out["decoder_ms"] = round(
            gpu_time(lambda: cap.decoder(embeds, prompt, cap.max_new_tokens, cap.eos_id), 10) * 1000, 2
        )
    out["caption_total_ms"] = round(gpu_time(lambda: cap.caption(images), 10) * 1000, 2)
    started = time.perf_counter()
    for _ in range(5):
        cap.caption(images)
    out["caption_wall_ms"] = round((time.perf_counter() - started) / 5 * 1000, 2)
    return out


@part("stages")
def stages_part():
    """Each stage of stylize_batch between two synchronizations (so a stage's time includes the host work
    that the GPU would otherwise wait for), medians of 5 albums, after a first one that captures graphs."""
    import statistics

    import inference.stylize as stylize_module

    names = ("prepare_image", "_captions", "encode_images", "encode_prompts", "make_groups", "sample_noise")
    names += ("denoise", "decode")
    times: dict[str, list[float]] = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            torch.cuda.synchronize()
            started = time.perf_counter()
            result = fn(*args, **kwargs)
            torch.cuda.synchronize()
            times.setdefault(name, []).append(time.perf_counter() - started)
            return result

        return run

    originals = {name: getattr(stylize_module, name) for name in names}
    out = {}
    try:
        for name, fn in originals.items():
            setattr(stylize_module, name, timed(name, fn))
        for fast in (False, True):

            def album(fast=fast):
                return stylize_batch(models, [StylizeItem(photo, seed=1, strength=0.6)], fast=fast)

            album()
            times.clear()
            totals = []
            for _ in range(5):
                torch.cuda.synchronize()
                started = time.perf_counter()
                album()
                torch.cuda.synchronize()
                totals.append(time.perf_counter() - started)
            row = {k: round(statistics.median(v) * 1000, 2) for k, v in times.items()}
            row["album_wall_ms"] = round(statistics.median(totals) * 1000, 2)
            row["unaccounted_ms"] = round(row["album_wall_ms"] - sum(row[k] for k in times), 2)
            out["fast" if fast else "normal"] = row
    finally:
        for name, fn in originals.items():
            setattr(stylize_module, name, fn)
    return out


@part("memory")
def memory_part():
    """Peak allocated above the resident weights, GiB, for the 768x512 bucket's big shapes (eager)."""
    from inference.graphs import plain_decoder

    gib = 2**30
    unet, decode = models.txt2img.unet, plain_decoder(models.txt2img.vae)
    out = {"resident_allocated": round(torch.cuda.memory_allocated() / gib, 3)}

    def peak(fn):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            fn()
        torch.cuda.synchronize()
        return round((torch.cuda.max_memory_allocated() - base) / gib, 3)

    x, t, e = unet_inputs(8, 64, 96)
    z = torch.randn(4, 4, 64, 96, device="cuda", dtype=torch.float16)
    out["unet_b8_768x512_eager"] = peak(lambda: unet(x, t, encoder_hidden_states=e))
    out["decode_4_768x512"] = peak(lambda: decode(z))
    out["decode_2_768x512"] = peak(lambda: decode(z[:2]))
    out["decode_4_512x512"] = peak(lambda: decode(z[..., :64]))
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    graphed = GraphedUNet(unet)
    with torch.inference_mode():
        graphed(x, t, e)
    torch.cuda.synchronize()
    out["graph_b8_768x512_reserved_added"] = round((torch.cuda.memory_reserved() - before) / gib, 3)
    return out


@part("drain")
def drain_part():
    import tempfile
    import threading
    from collections import defaultdict
    from pathlib import Path

    import inference.batch_runner as runner
    import inference.stylize as stylize_module
    from inference.bench_queue import queue_photos
    from inference.worker import Worker

    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[f"{name}@{threading.current_thread().name.split('_')[0]}"] += (
                    time.perf_counter() - started
                )

        return run

    real = stylize_module.stylize_batch, runner.StylizeBatches._claim_more, runner.write_stylize

    def paint(models, items, **kwargs):
        spent["photos_per_batch_sum"] += len(items)
        spent["batches"] += 1
        return real[0](models, items, **kwargs)

    stylize_module.stylize_batch = timed("paint", paint)
    runner.StylizeBatches._claim_more = timed("claim_and_decode", real[1])
    runner.write_stylize = timed("write", real[2])
    out = {}
    try:
        for n in (8, 64):  # the first drain captures the fast shapes; the second is measured
            spent.clear()
            with tempfile.TemporaryDirectory() as tmp:
                data_dir = Path(tmp)
                photos = queue_photos(data_dir / "uploads" / "1", n, [(4, 3), (3, 4), (1, 1), (16, 9)])
                worker = Worker(
                    InferenceSettings(data_dir=data_dir, models=settings.models, device="cuda"),
                    models=models,
                    idle_min_s=0.001,
                )
                for i, path in enumerate(photos):
                    worker.queue.enqueue("stylize", {"image": path, "fast": True}, user_id=i, priority=10)
                started = time.perf_counter()
                done = 0
                while done < n:
                    done += worker.run_pending()
                wall = time.perf_counter() - started
                worker.close()
            out[f"n{n}"] = {
                "wall_s": round(wall, 3),
                "albums_per_hour": round(3600 * n / wall),
                **{k: round(v, 3) for k, v in sorted(spent.items())},
            }
    finally:
        stylize_module.stylize_batch, runner.StylizeBatches._claim_more, runner.write_stylize = real
    return out


if __name__ == "__main__":
    main()
