"""/pose references: what the bot checks when one arrives and the worker checks again before painting.

Torch-free: the bot runs `examine_reference` in a thread, as it does with selfies. A reference needs to be a
picture we can decode, and big enough that its edges survive the resize to the model's 512 px: below
MIN_REFERENCE_SIDE the picture is upscaled more than 2x, its outlines blur, and Canny at the preset
thresholds finds too few of them to hold a pose. A reference with nobody in it is still painted (a
landscape's composition is a fine pose too), but the user is told why the result may not look like them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from contract.faces import detect_faces
from contract.images import load_photo
from jobs.errors import IMAGE_TOO_SMALL, JobError

MIN_REFERENCE_SIDE = 256


def load_reference(source: Path | bytes) -> Image.Image:
    """The reference as RGB, or JobError (not an image, too large, or too small for a pose)."""
    image = load_photo(source)
    if min(image.size) < MIN_REFERENCE_SIDE:
        raise JobError(
            IMAGE_TOO_SMALL,
            f"the reference is {image.width}x{image.height}; send one at least {MIN_REFERENCE_SIDE} px "
            "on each side",
        )
    return image


@dataclass(frozen=True)
class ReferenceCheck:
    code: str | None  # a jobs.errors code when the reference cannot be used
    faces: int = 0  # 0: nobody to take a pose from (painted anyway, with a tip)


def examine_reference(source: Path | bytes) -> ReferenceCheck:
    """Decode and check one reference (blocking: the bot runs it in a thread)."""
    try:
        image = load_reference(source)
    except JobError as error:
        return ReferenceCheck(error.code)
    return ReferenceCheck(None, len(detect_faces(image)))
