"""Shape buckets: every aspect from 1:4 to 4:1 and every size from 1x1 to 10000x10000 lands in one."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from inference.buckets import bucket_for, buckets, fit_to_bucket

SIZES = [1, 2, 7, 63, 64, 100, 511, 512, 513, 1600, 4032, 9999, 10000]
ASPECTS = [
    (1, 4),
    (1, 3),
    (9, 16),
    (2, 3),
    (3, 4),
    (4, 5),
    (1, 1),
    (5, 4),
    (4, 3),
    (3, 2),
    (16, 9),
    (3, 1),
    (4, 1),
]


@pytest.mark.parametrize("resolution", [128, 512])
def test_five_buckets_of_multiples_the_unet_accepts(resolution: int) -> None:
    sizes = buckets(resolution)
    assert len(sizes) == len(set(sizes)) == 5
    assert all(min(s) == resolution and max(s) <= resolution * 3 // 2 for s in sizes)
    multiple = 64 if resolution == 512 else 16
    assert all(side % multiple == 0 for s in sizes for side in s)
    if resolution == 512:
        assert set(sizes) == {(512, 512), (640, 512), (512, 640), (768, 512), (512, 768)}


@pytest.mark.parametrize("resolution", [128, 512])
def test_every_aspect_and_size_maps_to_the_nearest_bucket_of_its_orientation(resolution: int) -> None:
    sizes = buckets(resolution)
    for aw, ah in ASPECTS:
        for short in SIZES:
            w, h = (short * aw // min(aw, ah), short * ah // min(aw, ah))
            for width, height in ((w, h), (min(w, 10000), min(h, 10000)), (short, short)):
                bucket = bucket_for(width, height, resolution)
                assert bucket in sizes
                if width > height * 1.12:
                    assert bucket[0] > bucket[1], (width, height, bucket)
                elif height > width * 1.12:
                    assert bucket[1] > bucket[0], (width, height, bucket)
                error = abs(math.log(bucket[0] / bucket[1]) - math.log(max(1, width) / max(1, height)))
                assert all(
                    error <= abs(math.log(s[0] / s[1]) - math.log(max(1, width) / max(1, height))) + 1e-12
                    for s in sizes
                )


def test_phone_aspects_and_degenerate_sizes() -> None:
    assert bucket_for(1600, 1200, 512) == (640, 512)  # 4:3
    assert bucket_for(1200, 1600, 512) == (512, 640)  # 3:4
    assert bucket_for(1600, 1600, 512) == (512, 512)
    assert bucket_for(1600, 900, 512) == (768, 512)  # 16:9
    assert bucket_for(1, 1, 512) == (512, 512)
    assert bucket_for(0, 5, 512) == (512, 768)  # nonsense sizes still get a bucket
    assert bucket_for(10000, 2500, 512) == (768, 512)


@pytest.mark.parametrize(
    ("width", "height"), [(1, 1), (3, 1), (1, 4), (200, 150), (90, 160), (640, 512), (999, 250)]
)
def test_fit_gives_exactly_the_bucket_and_keeps_the_centre(width: int, height: int) -> None:
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste(
        (0, 0, 255), (width // 2 - width // 8, height // 2 - height // 8, width // 2 + 1, height // 2 + 1)
    )
    bucket = bucket_for(width, height, 512)
    fitted = fit_to_bucket(image, bucket)
    assert fitted.size == bucket and fitted.mode == "RGB"
    if min(width, height) >= 8:
        assert fitted.getpixel((bucket[0] // 2 - 2, bucket[1] // 2 - 2))[2] > 200  # the centre survives


def test_a_photo_at_a_bucket_size_is_not_resampled() -> None:
    image = Image.effect_noise((640, 512), 64).convert("RGB")
    assert fit_to_bucket(image, (640, 512)) is image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_header_says_the_size_load_photo_gives(orientation: int) -> None:
    """The worker groups jobs by bucket from the header alone (inference.buckets.photo_bucket): every EXIF
    orientation, and a JPEG big enough to be decoded at reduced scale, keep its aspect."""
    from contract.images import load_photo, oriented_size
    from inference.buckets import bucket_for, decode_and_fit, photo_bucket
    from jobs.errors import JobError
    from tests.contract.test_images import encode

    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.new("RGB", (2400, 1350), (90, 30, 200)), "JPEG", exif=exif.tobytes())
    decoded = load_photo(data)
    assert oriented_size(data)[0] / oriented_size(data)[1] == pytest.approx(decoded.width / decoded.height)
    assert photo_bucket(data, 512) == bucket_for(*decoded.size, 512) == decode_and_fit(data, 512).size
    assert photo_bucket(data, 512) == ((512, 768) if orientation in (5, 6, 7, 8) else (768, 512))
    with pytest.raises(JobError):
        oriented_size(b"not a picture at all" * 10)
