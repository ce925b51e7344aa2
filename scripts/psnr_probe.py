"""Is the album's PSNR check meaningful on random weights? Diffusers against itself under fp16 noise.

MODELS=sd15-random python scripts/psnr_probe.py [--pose]  (a GPU host; prints PSNRs in dB as JSON; --pose: then
four /pose portraits, the user's LoRA fused)
"""

import json
import sys

import numpy as np
import torch

from contract.styles import STYLES
from inference.bench import bench_photo
from inference.bench_parts import plain_pipeline, psnr
from inference.models import load_models
from inference.settings import InferenceSettings
from inference.stylize import StylizeItem, encode_image, stylize_batch

s = InferenceSettings.from_env()
models = load_models(s, roles=("base", "caption"))
pipe = plain_pipeline(models)
photo = bench_photo(models.resolution)
style = STYLES["delaunay"]


def ref(batch, gen_seed=3):
    with torch.inference_mode():
        init = encode_image(pipe, photo, models.device, models.dtype)
        out = pipe(
            prompt=[style.render("a man")] * batch,
            negative_prompt=[style.negative] * batch,
            image=init.repeat(batch, 1, 1, 1),
            strength=style.strength,
            guidance_scale=style.guidance,
            num_inference_steps=30,
            generator=[torch.Generator().manual_seed(gen_seed)] * batch,
        ).images
    return np.asarray(out[0])


r1, r1b, r2 = ref(1), ref(1), ref(2)
out = {"diffusers_repeat_db": psnr(r1, r1b), "diffusers_batch1_vs_batch2_db": psnr(r1, r2)}
ours_alone = stylize_batch(
    models, [StylizeItem(photo, styles=("delaunay",), seed=3, caption="a man")], steps=30
)[0].images[0][1]
out["ours_alone_vs_diffusers_db"] = psnr(r1, np.asarray(ours_alone))
models.settings.cuda_graphs = False
models._lazy.clear()
ours_eager = stylize_batch(
    models, [StylizeItem(photo, styles=("delaunay",), seed=3, caption="a man")], steps=30
)[0].images[0][1]
out["ours_eager_vs_diffusers_db"] = psnr(r1, np.asarray(ours_eager))
out["ours_eager_vs_graphed_db"] = psnr(np.asarray(ours_alone), np.asarray(ours_eager))
print(json.dumps(out))

if "--pose" in sys.argv:  # then four pose portraits with the LoRA fused (issue 11's figure)
    from inference.bench import Timer
    from inference.pose_bench import pose_bench

    models.settings.cuda_graphs = True
    models._lazy.clear()
    print(json.dumps({"pose": pose_bench(models, Timer(models.device), 3, 1)}))
