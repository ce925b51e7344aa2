"""Selfie checks for /train: one face, big enough, cropped square around the subject; duplicates.

Torch-free on purpose: the bot imports this module to check selfies in a thread as they arrive.
The detector is OpenCV's Haar cascade, whose weights ship inside the opencv wheel (no downloads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from contract.images import load_photo
from jobs import errors
from jobs.errors import JobError

MIN_SHORT_SIDE = 384
CROP_SIZE = 512
CROP_SCALE = 2.4  # the square crop's side, in face-box widths: face, hair, neck and shoulders
DETECT_LONG_SIDE = 800  # detection runs on a copy no larger than this: fast, and enough for selfies
BACKGROUND_FACE = (
    0.35  # a face narrower than this fraction of the largest one is a passer-by, not a second subject
)
DUPLICATE = "duplicate"  # a selfie rejection reason of our own, next to jobs.errors codes
DUPLICATE_DISTANCE = 6  # dHash bits: a re-encoded or resized copy differs by 0–3, another photo by 15+


@dataclass(frozen=True)
class Box:
    """A face box in the original image's pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union else 0.0


@dataclass(frozen=True)
class SelfieCheck:
    ok: bool
    code: str | None = None  # a jobs.errors code when not ok
    message_key: str | None = None  # the bot's text key for the reason (the same string as the code)
    crop: Image.Image | None = None  # CROP_SIZE×CROP_SIZE RGB when ok
    box: Box | None = None  # the face, in the original (EXIF-rotated) image's pixels
    faces: int = 0


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():  # pragma: no cover - a broken opencv install
        raise RuntimeError(f"OpenCV cascade {name} is missing")
    return cascade


def _gray_for_detection(img: Image.Image) -> tuple[np.ndarray, float]:
    """Grayscale, equalized, downscaled copy and the factor back to the original's pixels."""
    scale = min(1.0, DETECT_LONG_SIDE / max(img.size))
    small = (
        img
        if scale == 1.0
        else img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    )
    gray = np.asarray(small.convert("L"))
    return cv2.equalizeHist(gray), 1.0 / scale


def detect_faces(img: Image.Image) -> list[Box]:
    """Frontal faces, largest first. Faces much smaller than the largest (background people) are dropped."""
    gray, back = _gray_for_detection(img)
    min_side = max(24, int(min(gray.shape) * 0.08))
    found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(found) == 0:
        # alt2 finds some faces (turned slightly, harsh light) that the default cascade misses
        found = _cascade("haarcascade_frontalface_alt2.xml").detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side)
        )
    boxes = [Box(round(x * back), round(y * back), round(w * back), round(h * back)) for x, y, w, h in found]
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    merged: list[Box] = []
    for box in boxes:  # the cascade can report one face twice at neighbouring scales
        if all(box.iou(kept) < 0.3 for kept in merged):
            merged.append(box)
    if not merged:
        return []
    largest = merged[0].w
    return [b for b in merged if b.w >= BACKGROUND_FACE * largest]


def crop_around(
    img: Image.Image, box: Box, *, scale: float = CROP_SCALE, size: int = CROP_SIZE
) -> Image.Image:
    """A square of `scale` face widths around the face, kept inside the image, resized to size×size."""
    side = min(round(max(box.w, box.h) * scale), img.width, img.height)
    cx, cy = box.center
    cy += 0.15 * box.h  # a little lower than the face's centre: chin and shoulders, less sky
    left = int(min(max(cx - side / 2, 0), img.width - side))
    top = int(min(max(cy - side / 2, 0), img.height - side))
    square = img.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.LANCZOS)


def check_selfie(img: Image.Image) -> SelfieCheck:
    """Is this a usable training photo? When it is, the 512×512 crop around the face comes with the answer."""
    img = ImageOps.exif_transpose(img).convert("RGB")
    if min(img.size) < MIN_SHORT_SIDE:
        return SelfieCheck(False, errors.IMAGE_TOO_SMALL, errors.IMAGE_TOO_SMALL)
    faces = detect_faces(img)
    if not faces:
        return SelfieCheck(False, errors.NO_FACE, errors.NO_FACE)
    if len(faces) > 1:
        return SelfieCheck(False, errors.MANY_FACES, errors.MANY_FACES, faces=len(faces))
    return SelfieCheck(True, crop=crop_around(img, faces[0]), box=faces[0], faces=1)


def image_fingerprint(img: Image.Image) -> int:
    """64-bit difference hash: survives re-encoding and resizing, differs for another photo."""
    gray = np.asarray(img.convert("L").resize((9, 8), Image.LANCZOS), dtype=np.int16)
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def is_duplicate(fp: int, fps: Iterable[int], max_distance: int = DUPLICATE_DISTANCE) -> bool:
    """Is `fp` (nearly) the same photo as one already accepted?"""
    return any(hamming(fp, other) <= max_distance for other in fps)


@dataclass(frozen=True)
class SelfieVerdict:
    """One photo's outcome: accepted (crop and fingerprint set) or a reason code."""

    code: str | None
    crop: Image.Image | None = None
    fingerprint: int | None = None


def examine_selfie(source: Path | bytes) -> SelfieVerdict:
    """Decode, check and crop one photo (blocking: the bot runs it in a thread)."""
    try:
        image = load_photo(source)
    except JobError as error:
        return SelfieVerdict(error.code)
    check = check_selfie(image)
    if not check.ok:
        return SelfieVerdict(check.code)
    return SelfieVerdict(None, check.crop, image_fingerprint(image))
