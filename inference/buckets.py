"""Shape buckets: every photo is painted at one of five fixed sizes, so the GPU sees few shapes.

Why not each photo's own aspect (what `contract.images.prepare_for_sd` keeps): every new latent size was
a new cuDNN autotune (now off), a new CUDA graph capture and, with torch.compile, new kernels; on an H200 that put
8 s in front of the user whose phone had an unseen aspect ratio (issue 9: job p95 8.0 s against a p50 of
1.4 s). With five sizes every shape is prepared when the worker starts, and photos of the same bucket
from several users share one UNet batch. The cost is a centre crop to the nearest of 1:1, 5:4 and 3:2 (a
4:3 phone photo loses 6 % of its width, 16:9 loses 16 %, which `prepare_for_sd` cropped already).
Torch-free: the worker groups jobs by bucket before any model runs.
"""

from __future__ import annotations

import math

from PIL import Image

# long side : short side of each bucket; each exists in landscape and portrait (1:1 once)
ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (5, 4), (3, 2))
MULTIPLE = 64  # the SD UNet downsamples latents 3x: pixel sides stay multiples of 8 * 8


def _side(resolution: int, num: int, den: int) -> int:
    multiple = MULTIPLE if resolution >= 8 * MULTIPLE else 16  # tiny models work at 128 px
    return max(multiple, resolution * num // den // multiple * multiple)


def buckets(resolution: int) -> list[tuple[int, int]]:
    """The (width, height) sizes at `resolution` (the short side): square first, then by aspect."""
    sizes = [(resolution, resolution)]
    for num, den in ASPECTS[1:]:
        long = _side(resolution, num, den)
        sizes += [(long, resolution), (resolution, long)]
    return sizes


def bucket_for(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket whose aspect is nearest (in log ratio) to width:height, same orientation."""
    width, height = max(1, int(width)), max(1, int(height))
    aspect = math.log(width / height)
    return min(buckets(resolution), key=lambda size: (abs(math.log(size[0] / size[1]) - aspect), size))


def fit_to_bucket(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop `image` to the bucket's aspect, then resize it to exactly `size`.

    A photo already at the bucket's size is returned as is (no resampling), so for it the bucketed path
    paints the very pixels the plain path did.
    """
    if image.size == size:
        return image
    w, h = image.size
    target = size[0] / size[1]
    if w / h > target:  # too wide: crop the sides
        cw, ch = max(1, round(h * target)), h
    else:  # too tall: crop top and bottom
        cw, ch = w, max(1, round(w / target))
    left, top = (w - cw) // 2, (h - ch) // 2
    cropped = image.crop((left, top, left + cw, top + ch))
    return cropped.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def fit_image(image: Image.Image, resolution: int, use_buckets: bool = True) -> Image.Image:
    """The photo as RGB at its shape bucket, or at its own aspect with ARTBOOTH_BUCKETS=0."""
    from contract.images import prepare_for_sd

    image = image.convert("RGB")
    if use_buckets:
        return fit_to_bucket(image, bucket_for(*image.size, resolution))
    return prepare_for_sd(image, short_side=resolution, max_long_side=resolution * 3 // 2)


def decode_and_fit(data: bytes, resolution: int, use_buckets: bool = True) -> Image.Image:
    """An upload's bytes decoded (or a JobError: not a photo, too small, too big) and fitted: the CPU half of
    preparing a stylize job, torch-free and picklable, so the worker can run it in a decode process
    (inference/batch_runner.py). With buckets, the bucket comes from the header (`photo_bucket`), as the
    batch runner groups jobs by it before decoding any."""
    from contract.images import load_photo

    if not use_buckets:
        return fit_image(load_photo(data), resolution, use_buckets=False)
    size = photo_bucket(data, resolution)
    return fit_to_bucket(load_photo(data), size)


def photo_bucket(data: bytes, resolution: int) -> tuple[int, int]:
    """The bucket an upload will be painted at, from its header (size, EXIF orientation), without decoding
    it: the batch runner groups claimed jobs by it and decodes only those it paints together."""
    from contract.images import oriented_size

    return bucket_for(*oriented_size(data), resolution)
