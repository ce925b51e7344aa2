"""Photo intake: every bad input gets a stable code; every odd-but-valid one becomes a sane RGB picture."""

from __future__ import annotations

import io
import resource
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.images import load_photo, prepare_for_sd
from jobs import errors
from jobs.errors import JobError


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def code_of(src) -> str:
    with pytest.raises(JobError) as info:
        load_photo(src)
    assert info.value.message and "\n" not in info.value.message
    return info.value.code


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, followed by a tiny IDAT: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


PHOTO = Image.new("RGB", (200, 150), (30, 120, 200))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", errors.EMPTY_FILE),
        (b"hello, this is a text file\n" * 10, errors.NOT_AN_IMAGE),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", errors.NOT_AN_IMAGE),
        (bytes(range(256)) * 20, errors.NOT_AN_IMAGE),
        (encode(PHOTO, "JPEG")[:300], errors.NOT_AN_IMAGE),  # truncated JPEG
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200, errors.UNSUPPORTED_FORMAT),
        (encode(Image.new("RGB", (1, 1)), "PNG"), errors.IMAGE_TOO_SMALL),
        (encode(Image.new("RGB", (600, 40)), "PNG"), errors.IMAGE_TOO_SMALL),
        (png_header_only(10000, 10000), errors.IMAGE_TOO_LARGE),  # 100 MP, not JPEG: rejected
    ],
    ids=["empty", "text", "pdf", "noise", "truncated-jpeg", "fake-heic", "1x1", "thin", "png-10000"],
)
def test_bad_inputs_get_stable_codes(data: bytes, code: str) -> None:
    assert code_of(data) == code


def test_decompression_bomb_is_rejected_without_decoding() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert code_of(png_header_only(100_000, 100_000)) == errors.IMAGE_TOO_LARGE
    assert code_of(png_header_only(9000, 9000)) == errors.IMAGE_TOO_LARGE  # 81 MP: our cap, below Pillow's
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50_000


def test_file_too_large_and_empty_file_on_disk(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\x00" * (21 * 1024 * 1024))
    assert code_of(big) == errors.FILE_TOO_LARGE
    assert code_of(b"\xff\xd8" + b"\x00" * (21 * 1024 * 1024)) == errors.FILE_TOO_LARGE
    empty = tmp_path / "empty.jpg"
    empty.touch()
    assert code_of(empty) == errors.EMPTY_FILE


def test_huge_jpeg_is_decoded_at_reduced_scale() -> None:
    """Documented: a 10000x10000 JPEG is accepted and DCT-decoded at 1/8 (1250x1250), never in full."""
    im = load_photo(encode(Image.new("RGB", (10000, 10000), (200, 100, 50)), "JPEG", quality=50))
    assert im.size == (1250, 1250)
    assert np.allclose(im.getpixel((600, 600)), (200, 100, 50), atol=4)


def test_phone_jpeg_with_an_embedded_picture_is_decoded_like_a_jpeg() -> None:
    """Phones save big JPEGs with a gain map or depth picture, which Pillow reads as MPO."""
    big, small = Image.new("RGB", (7000, 6000), (30, 160, 90)), Image.new("RGB", (700, 600))
    data = encode(big, "MPO", save_all=True, append_images=[small], quality=50)
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.format == "MPO" and raw.width * raw.height > 40_000_000  # over the non-JPEG cap
    im = load_photo(data)
    assert max(im.size) <= 3500 and np.allclose(im.getpixel((10, 10)), (30, 160, 90), atol=4)


@pytest.mark.parametrize(("values", "grey"), [((5.0, 5.0), 128), ((-3.0, 0.5), None), ((0.0, 1.0), None)])
def test_float_greyscale_is_never_black_or_nan(values: tuple[float, float], grey: int | None) -> None:
    arr = np.linspace(values[0], values[1], 64 * 64, dtype=np.float32).reshape(64, 64)
    im = load_photo(encode(Image.fromarray(arr, "F"), "TIFF"))
    pixels = np.asarray(im)
    if grey is not None:
        assert (pixels == grey).all()
    else:  # the range is stretched over 0..255
        assert pixels.min() <= 2 and pixels.max() >= 253


def test_cmyk_jpeg() -> None:
    im = load_photo(encode(Image.new("CMYK", (100, 80), (0, 255, 255, 0)), "JPEG", quality=95))
    assert im.mode == "RGB" and im.size == (100, 80)
    r, g, b = im.getpixel((50, 40))
    assert r > 200 and g < 60 and b < 60  # cyan+magenta-free, yellow-free... i.e. red


def test_rgba_png_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 50, 100))
    im = load_photo(encode(rgba, "PNG"))
    assert im.mode == "RGB"
    assert im.getpixel((75, 50)) == (255, 255, 255)
    assert im.getpixel((25, 50)) == (0, 0, 255)


def test_16_bit_png_is_scaled_not_clipped() -> None:
    grey16 = Image.fromarray(np.full((80, 80), 32768, dtype=np.uint16))
    im = load_photo(encode(grey16, "PNG"))
    assert abs(im.getpixel((40, 40))[0] - 128) <= 1


@pytest.mark.parametrize("mode", ["L", "P", "LA", "1"])
def test_other_modes_become_rgb(mode: str) -> None:
    src = Image.new("RGB", (90, 90), (10, 200, 30)).convert(mode)
    im = load_photo(encode(src, "PNG"))
    assert im.mode == "RGB" and im.size == (90, 90)


def test_palette_png_with_transparency() -> None:
    p = Image.new("P", (80, 80), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.paste(1, (0, 0, 40, 80))
    im = load_photo(encode(p, "PNG", transparency=0))
    assert im.getpixel((10, 10)) == (255, 0, 0)
    assert im.getpixel((70, 10)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (96, 96), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    data = encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True
    )
    r, g, b = load_photo(data).getpixel((48, 48))
    assert r > 200 and g < 50 and b < 50


def test_exif_orientation_rotates() -> None:
    src = Image.new("RGB", (200, 100), (0, 0, 0))
    src.paste((255, 255, 255), (0, 0, 100, 100))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im = load_photo(encode(src, "JPEG", exif=exif.tobytes(), quality=95))
    assert im.size == (100, 200)
    assert im.getpixel((50, 20))[0] > 200  # the white half is now on top
    assert im.getpixel((50, 180))[0] < 50


def test_path_input(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(PHOTO, "JPEG"))
    assert load_photo(path).size == (200, 150)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1000, 1000), (512, 512)),
        ((3000, 2000), (768, 512)),
        ((2000, 3000), (512, 768)),
        ((4000, 1000), (768, 512)),  # a panorama: its centre at the widest shape we paint, not a strip
        ((64, 1280), (512, 768)),
        ((100, 64), (768, 512)),
        ((641, 480), (680, 512)),
    ],
)
def test_prepare_for_sd(size: tuple[int, int], expected: tuple[int, int]) -> None:
    out = prepare_for_sd(Image.new("RGB", size))
    assert out.size == expected
    assert out.size[0] % 8 == 0 and out.size[1] % 8 == 0
