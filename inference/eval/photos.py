"""Input pictures and prompts for the studies: a folder of photos, or the default set that ships with
scikit-image (real photos, no download), and prompt files (one prompt per line, # comments)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

# scikit-image's bundled photos: a person first, then a cat, a cup, a rocket, a cameraman (grayscale).
DEFAULT_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "camera")
_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def default_photos(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    from skimage import data

    names = DEFAULT_PHOTOS[:limit] if limit else DEFAULT_PHOTOS
    return [(name, Image.fromarray(getattr(data, name)()).convert("RGB")) for name in names]


def load_photos(folder: Path | None, limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """(name, RGB image) for each picture in `folder` (sorted by name), or the default set if None."""
    if folder is None:
        return default_photos(limit)
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in _EXTENSIONS)
    if not paths:
        raise SystemExit(f"no photos ({', '.join(sorted(_EXTENSIONS))}) in {folder}")
    paths = paths[:limit] if limit else paths
    photos = []
    for path in paths:
        with Image.open(path) as im:
            photos.append((path.name, ImageOps.exif_transpose(im).convert("RGB")))  # a.jpg and a.png differ
    return photos


def load_prompts(path: Path | None, default: list[str], limit: int | None = None) -> list[str]:
    prompts = default
    if path is not None:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return prompts[:limit] if limit else list(prompts)


def center_square(image: Image.Image, size: int) -> Image.Image:
    """The centre square of a photo at the model's working resolution."""
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)
