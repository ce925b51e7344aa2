"""The ControlNet's conditioning: a reference's edges, from OpenCV's Canny (no weights, no torch).

The thresholds are the ones `lllyasviel/sd-controlnet-canny` is shown with (its demo and diffusers' docs):
low 100, high 200, the 1:2 ratio Canny recommends. On a photo resized to the model's 512 px they keep the
body's outline, the face's contour and the big folds of clothing, and drop skin and fabric texture, which
would otherwise pin the reference's details (and its person's face) onto the user. The edges are taken
*after* the resize to the working resolution, so their density is what the ControlNet saw in training.

Deterministic: the same picture and thresholds give the same bytes (Canny is integer arithmetic on uint8).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

CANNY_LOW = 100
CANNY_HIGH = 200


def canny_edges(image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """White edges on black, RGB (the ControlNet's 3-channel conditioning), the size of `image`."""
    if not 0 <= low <= high:
        raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high, got {low}, {high}")
    # On the RGB array, as the ControlNet's own annotator does: an edge between two colours of the same
    # brightness (a red shirt on green grass) counts, where a greyscale copy would lose it.
    edges = cv2.Canny(np.ascontiguousarray(np.asarray(image.convert("RGB"))), low, high)
    return Image.fromarray(np.repeat(edges[:, :, None], 3, axis=2), "RGB")
