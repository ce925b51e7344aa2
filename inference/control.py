"""ControlNet (canny edges) pipelines over the resident modules: loaded on the first /pose, then kept.

Why lazily: the worker's weights are resident from the start, but the ControlNet (`lllyasviel/
sd-controlnet-canny`, 361 M parameters, 0.7 GiB in fp16) serves only /pose and the evaluation's third
architecture. Loading it on the first pose job costs that one job the load (a second or two from a local
cache) and keeps it for every later one. Loading it at start would cost every worker that memory and its
start-up time, and, with `MODELS=sd15`, a missing ControlNet download would stop the whole worker from
starting instead of failing only the pose jobs with `model_missing`. The memory target holds either way
(docs/benchmarks.md; `python -m inference bench --pose` measures the load and the peak with it resident).

/pose does not run a diffusers pipeline: `controlled_unet` is one denoising step of diffusers'
`StableDiffusionControlNetPipeline` (the ControlNet's residuals fed into the UNet), which the worker's own
loop (inference/portrait.py::paint_text2img) replays as CUDA graphs like /me's UNet (inference/graphs.py).
The evaluation's img2img + ControlNet stays a diffusers pipeline, built from `models.txt2img.components`.
Either way the UNet, VAE, text encoder and scheduler are the resident ones, so there is no second copy, and
a user's LoRA fused or loaded into that UNet and text encoder (inference/portrait.py) applies to pose
portraits as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from contract.styles import STYLES
from inference.edges import canny_edges

# How strongly the edges steer the UNet. 1.0 is the model's own default, but at 1.0 the reference's face
# outline overrides the face the user's LoRA paints; 0.8 still holds the pose and the composition (the
# body's outline dominates the edges map) and leaves the face to the LoRA.
CONDITIONING_SCALE = 0.8
# The share of the denoising steps the ControlNet steers, from the first: diffusers' `control_guidance_end`.
# By 80% of a 20-step schedule the pose and the composition are settled; the last steps paint texture,
# where the reference's fine edges (folds of its clothes, hair, clutter behind it) would otherwise be
# printed onto the user's picture. Those steps run the plain UNet, which also spares the ControlNet's cost
# on them (about 40% of a step).
CONTROL_END = 0.8


def controlled_steps(steps: int, end: float = CONTROL_END) -> int:
    """How many of `steps` steps, from the first, run the ControlNet: the steps diffusers' pipeline keeps
    for `control_guidance_start=0, control_guidance_end=end` (step i while (i + 1) / steps <= end)."""
    return sum(1 for i in range(steps) if (i + 1) / steps <= end)


def _components(models) -> dict[str, Any]:
    parts = dict(models.txt2img.components)
    parts.update(controlnet=models.controlnet(), safety_checker=None, feature_extractor=None)
    return parts


def controlled_unet(models, conditioning_scale: float = CONDITIONING_SCALE) -> Callable[..., torch.Tensor]:
    """(x, t, embeds, control image) -> the UNet's noise prediction with the ControlNet's residuals added,
    as StableDiffusionControlNetPipeline's loop computes it on a step it keeps (guess mode off).

    Graphed on CUDA under a key of its own per scale: the scale is a Python number inside the step, as in
    diffusers (a tensor of the UNet's dtype would round 0.8 in fp16), and only the CLI changes it."""
    from inference.graphs import unet_runner

    unet, controlnet = models.txt2img.unet, models.controlnet()  # the ControlNet loads on the first pose
    scale = float(conditioning_scale)

    def step(x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        down, mid = controlnet(
            x,
            t,
            encoder_hidden_states=embeds,
            controlnet_cond=image,
            conditioning_scale=scale,
            guess_mode=False,
            return_dict=False,
        )
        return unet(
            x,
            t,
            encoder_hidden_states=embeds,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            return_dict=False,
        )[0]

    return unet_runner(models, unet, f"control_graphs@{scale:g}", step)


def control_image(models, edges: Image.Image) -> torch.Tensor:
    """The edges as the ControlNet reads them, (1, 3, H, W) in [0, 1]: diffusers' `prepare_image` before
    it repeats the image per picture and for classifier-free guidance."""
    from diffusers.image_processor import VaeImageProcessor

    processor = VaeImageProcessor(
        vae_scale_factor=models.txt2img.vae_scale_factor, do_convert_rgb=True, do_normalize=False
    )
    pixels = processor.preprocess(edges, height=edges.height, width=edges.width).to(dtype=torch.float32)
    return pixels.to(device=models.device, dtype=models.controlnet().dtype)


def img2img_pipeline(models):
    """StableDiffusionControlNetImg2ImgPipeline over the resident modules (the evaluation's third arch)."""
    return _control_pipeline(models, "StableDiffusionControlNetImg2ImgPipeline")


def _control_pipeline(models, class_name: str):
    """A diffusers ControlNet pipeline of `class_name` over the resident modules, kept in models._lazy."""
    if class_name not in models._lazy:
        import diffusers

        pipe = getattr(diffusers, class_name)(**_components(models), requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        models._lazy[class_name] = pipe
    return models._lazy[class_name]


def stylize_with_edges(
    models,
    image: Image.Image,
    *,
    styles: Sequence[str],
    variants: int = 1,
    seed: int = 0,
    steps: int | None = None,
    caption: str | None = None,
    **_: Any,
):
    """img2img at each style's strength and guidance, with the photo's edges as ControlNet conditioning.

    The evaluation's third architecture (`eval style-match --arch controlnet`): does holding the photo's
    edges keep img2img's closeness to the photo while making it steadier? Takes and returns what
    `inference.stylize.stylize` does, so the study calls either the same way.
    """
    from inference.stylize import StylizeResult, caption_image, prepare_image

    started = time.perf_counter()
    pipe = img2img_pipeline(models)
    photo = prepare_image(models, image)
    caption = caption.strip() if caption and caption.strip() else caption_image(models, photo)
    edges = canny_edges(photo)
    pictures = []
    with torch.inference_mode():
        for i, style in enumerate(STYLES[s] for s in styles for _ in range(variants)):
            pictures.append(
                (
                    style.id,
                    pipe(
                        style.render(caption),
                        negative_prompt=style.negative,
                        image=photo,
                        control_image=edges,
                        strength=style.strength,
                        guidance_scale=style.guidance,
                        controlnet_conditioning_scale=CONDITIONING_SCALE,
                        num_inference_steps=steps or models.preset.steps,
                        generator=torch.Generator(device=models.device).manual_seed(seed + i),
                        height=photo.height,
                        width=photo.width,
                    ).images[0],
                )
            )
    return StylizeResult(caption=caption, images=pictures, seconds=time.perf_counter() - started)
