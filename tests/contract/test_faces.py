"""The selfie check on a real face photo (scikit-image's astronaut) and on images without faces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from contract import faces
from jobs import errors


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def test_astronaut_is_one_face_cropped_to_512(astronaut):
    check = faces.check_selfie(astronaut)
    assert check.ok and check.code is None
    assert check.crop.size == (512, 512) and check.crop.mode == "RGB"
    assert 150 < check.box.x < 210 and 40 < check.box.y < 100  # the face, not the flag or the shuttle


def test_crop_keeps_the_face_in_a_large_photo(astronaut):
    big = astronaut.resize((1600, 1600))
    check = faces.check_selfie(big)
    assert check.ok
    assert 450 < check.box.x < 700  # boxes come back in the original's pixels after downscaled detection


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (640, 480), "white"),
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)),
        Image.fromarray(data.coffee()),
    ],
    ids=["blank", "noise", "coffee"],
)
def test_no_face(image):
    check = faces.check_selfie(image)
    assert not check.ok and check.code == errors.NO_FACE and check.crop is None


def test_two_people_are_many_faces(astronaut):
    pair = Image.new("RGB", (1024, 512))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut.transpose(Image.FLIP_LEFT_RIGHT), (512, 0))
    check = faces.check_selfie(pair)
    assert not check.ok and check.code == errors.MANY_FACES and check.faces == 2


def test_small_image_is_rejected_before_detection(astronaut):
    check = faces.check_selfie(astronaut.resize((300, 300)))
    assert not check.ok and check.code == errors.IMAGE_TOO_SMALL


def test_reencoded_copy_is_a_duplicate_another_photo_is_not(astronaut):
    buf = io.BytesIO()
    astronaut.save(buf, "JPEG", quality=70)
    copy = Image.open(io.BytesIO(buf.getvalue())).resize((400, 400))
    original = faces.image_fingerprint(astronaut)
    assert faces.is_duplicate(faces.image_fingerprint(copy), [original])
    for other in (data.coffee(), data.chelsea(), data.rocket()):
        assert not faces.is_duplicate(faces.image_fingerprint(Image.fromarray(other)), [original])
    assert not faces.is_duplicate(original, [])
