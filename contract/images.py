"""Photo intake: bytes from a user -> one RGB picture, or a JobError with a stable code.

Size policy (checked on the header, before any pixel is decoded):
- more than `max_bytes` (20 MB, Telegram's cloud download limit) -> FILE_TOO_LARGE;
- short side under 64 px (a 1x1 included) -> IMAGE_TOO_SMALL;
- more than `max_pixels` (40 MP) -> IMAGE_TOO_LARGE, except JPEG: a JPEG is decoded with DCT scaling
  (`Image.draft`) straight to 1/2..1/8 size, so one of up to `max_jpeg_pixels` (150 MP) is accepted and
  never held in memory at full size. A 10000x10000 JPEG (100 MP) is therefore handled (decoded at
  1250x1250); a 10000x10000 PNG/WebP/GIF is rejected with IMAGE_TOO_LARGE. Pillow's own decompression
  bomb guard (MAX_IMAGE_PIXELS) stays on underneath: its error is reported as IMAGE_TOO_LARGE.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from jobs.errors import (
    EMPTY_FILE,
    FILE_TOO_LARGE,
    IMAGE_TOO_LARGE,
    IMAGE_TOO_SMALL,
    NOT_AN_IMAGE,
    UNSUPPORTED_FORMAT,
    JobError,
)

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_JPEG_PIXELS = 150_000_000  # below Pillow's hard bomb limit (2 * MAX_IMAGE_PIXELS = 179 MP)
MIN_SIDE = 64
JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a phone JPEG with an embedded gain map or depth picture
DRAFT_SIDE = 1024  # JPEGs are DCT-decoded to no less than this short side (when larger)

# ISO-BMFF brands of HEIF/HEIC/AVIF (iPhone photos): Pillow reads them only with a plugin.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


def read_upload(src: Path | bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of an upload; a file over `max_bytes` is refused before it is read."""
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
    else:
        path = Path(src)
        size = path.stat().st_size
        if size > max_bytes:
            raise JobError(
                FILE_TOO_LARGE, f"the file is {size / 2**20:.1f} MB; send one under {max_bytes // 2**20} MB"
            )
        data = path.read_bytes()
    if not data:
        raise JobError(EMPTY_FILE, "the file is empty")
    if len(data) > max_bytes:
        raise JobError(
            FILE_TOO_LARGE, f"the file is {len(data) / 2**20:.1f} MB; send one under {max_bytes // 2**20} MB"
        )
    return data


def _looks_like_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own caps decide below; Pillow's warning zone (89..179 MP) is not an error by itself.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise JobError(IMAGE_TOO_LARGE, "the picture has too many pixels; send a smaller one") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if _looks_like_heif(data):
            raise JobError(
                UNSUPPORTED_FORMAT, "HEIC/HEIF/AVIF photos are not supported; send it as JPEG/PNG"
            ) from exc
        raise JobError(NOT_AN_IMAGE, "this is not a picture we can read; send a JPEG or PNG photo") from exc


def _check_size(im: Image.Image, max_pixels: int, max_jpeg_pixels: int) -> None:
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        raise JobError(
            IMAGE_TOO_SMALL, f"the picture is {w}x{h}; send one at least {MIN_SIDE} px on each side"
        )
    cap = max_jpeg_pixels if im.format in JPEG_FORMATS else max_pixels
    if w * h > cap:
        raise JobError(
            IMAGE_TOO_LARGE,
            f"the picture is {w}x{h} ({w * h / 1e6:.0f} MP); send one under {cap // 10**6} MP",
        )


def _decode(im: Image.Image) -> Image.Image:
    """First frame, fully decoded (JPEGs at reduced DCT scale), EXIF orientation applied."""
    if im.format in JPEG_FORMATS and min(im.size) > 2 * DRAFT_SIDE:
        scale = min(im.size) / DRAFT_SIDE
        im.draft(im.mode, (int(im.size[0] / scale), int(im.size[1] / scale)))
    try:
        im.seek(0)
        im.load()
        return ImageOps.exif_transpose(im) or im
    except Image.DecompressionBombError as exc:
        raise JobError(IMAGE_TOO_LARGE, "the picture has too many pixels; send a smaller one") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:  # truncated or corrupt data
        raise JobError(NOT_AN_IMAGE, "the picture is damaged or cut off; send it again") from exc


def _high_bit_to_l(im: Image.Image) -> Image.Image:
    """16-bit/32-bit integer or float greyscale -> 8-bit L, scaled (65535 -> 255), not clipped."""
    arr = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:  # the usual 0..1 floats
            arr = arr * 255
        elif hi > lo:  # any other range: stretched to 0..255
            arr = (arr - lo) / (hi - lo) * 255
        else:  # one constant value outside 0..1: mid-grey rather than NaN or black
            arr = np.full_like(arr, 128.0)
    elif im.mode.startswith("I;16") or arr.max() > 255:
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparency is composited on white."""
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_bit_to_l(im).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode == "RGB":
        return im
    return im.convert("RGB")  # L, 1, P, CMYK (Adobe-inverted CMYK is handled by the JPEG decoder), YCbCr, LAB


def oriented_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an upload as `load_photo` will turn it (EXIF orientation applied), read from its
    header without decoding the pixels; JobError for what is not a picture, too small or too big."""
    im = _open(data)
    _check_size(im, MAX_PIXELS, MAX_JPEG_PIXELS)
    w, h = im.size
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)  # the transposing and the quarter turns


def load_photo(
    src: Path | bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_jpeg_pixels: int = MAX_JPEG_PIXELS,
) -> Image.Image:
    """Read a user's photo as RGB (EXIF-rotated, first frame of an animation), or raise JobError."""
    data = read_upload(src, max_bytes)
    im = _open(data)
    _check_size(im, max_pixels, max_jpeg_pixels)
    im = to_rgb(_decode(im))
    if min(im.size) < MIN_SIDE:  # only possible if EXIF or draft changed it; keep the promise anyway
        raise JobError(IMAGE_TOO_SMALL, f"the picture is {im.size[0]}x{im.size[1]}; send a bigger one")
    return im


def prepare_for_sd(
    img: Image.Image, short_side: int = 512, max_long_side: int = 768, multiple: int = 8
) -> Image.Image:
    """Resize so the short side is `short_side` (long side capped), then centre-crop to multiples of 8.

    Cropping the few leftover pixels keeps the aspect exact instead of stretching the picture. A picture
    longer than `max_long_side / short_side` (a panorama, a strip) is first centre-cropped to that shape:
    shrinking it whole would leave a short side the model cannot paint at.
    """
    w, h = img.size
    widest = max_long_side / short_side
    if max(w, h) > min(w, h) * widest:
        long = max(1, round(min(w, h) * widest))
        box = (
            ((w - long) // 2, 0, (w - long) // 2 + long, h)
            if w > h
            else (0, (h - long) // 2, w, (h - long) // 2 + long)
        )
        img = img.crop(box)
        w, h = img.size
    scale = short_side / min(w, h)
    if max(w, h) * scale > max_long_side:
        scale = max_long_side / max(w, h)
    nw, nh = max(multiple, round(w * scale)), max(multiple, round(h * scale))
    resized = (
        img if (nw, nh) == img.size else img.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    )
    cw, ch = max(multiple, nw // multiple * multiple), max(multiple, nh // multiple * multiple)
    left, top = (nw - cw) // 2, (nh - ch) // 2
    return resized.crop((left, top, left + cw, top + ch))
