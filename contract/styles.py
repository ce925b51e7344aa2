"""The style presets: one table. Torch-free, so the bot can list and name styles without loading models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StylePreset:
    id: str
    name_en: str
    name_ru: str
    prompt: str  # template around {caption}
    negative: str
    strength: float  # img2img: how far from the photo (0 keeps it, 1 ignores it)
    guidance: float

    def name(self, lang: str) -> str:
        return self.name_ru if lang == "ru" else self.name_en

    def render(self, caption: str) -> str:
        return self.prompt.format(caption=caption.strip() or "a portrait of a person")


_NEGATIVE = (
    "lowres, blurry, jpeg artifacts, deformed face, extra fingers, bad anatomy, watermark, signature, text"
)

STYLES: dict[str, StylePreset] = {
    s.id: s
    for s in (
        StylePreset(
            "vangogh",
            "Van Gogh",
            "Ван Гог",
            "{caption}, oil painting by Vincent van Gogh, thick impasto brushstrokes, swirling sky, "
            "vivid cobalt blue and chrome yellow, post-impressionism, masterpiece",
            _NEGATIVE + ", photo, photorealistic, smooth",
            0.6,
            7.5,
        ),
        StylePreset(
            "banksy",
            "Banksy",
            "Бэнкси",
            "{caption}, stencil graffiti by Banksy on a concrete wall, black and white spray paint, "
            "single red accent, street art, high contrast",
            _NEGATIVE + ", color photo, painterly, oil paint",
            0.6,
            8.0,
        ),
        StylePreset(
            "delaunay",
            "Robert Delaunay",
            "Робер Делоне",
            "{caption}, painting by Robert Delaunay, orphism, simultaneous contrast, concentric circular "
            "discs, prismatic bright colors, cubist fragmentation",
            _NEGATIVE + ", photo, monochrome",
            0.65,
            7.5,
        ),
        StylePreset(
            "malevich",
            "Kazimir Malevich",
            "Казимир Малевич",
            "{caption}, suprematist painting by Kazimir Malevich, flat geometric planes, faceless figure, "
            "primary colors, white background, russian avant-garde",
            _NEGATIVE + ", photo, detailed texture, realistic face",
            0.7,
            8.0,
        ),
        StylePreset(
            "disneyland",
            "Disneyland",
            "Диснейленд",
            "{caption}, standing in front of Disneyland castle, fireworks, colorful theme park, "
            "sharp focus, photo, 35mm",
            _NEGATIVE + ", painting, cartoon",
            0.5,
            7.0,
        ),
        StylePreset(
            "joy",
            "Joy",
            "Радость",
            "{caption}, laughing with joy, big happy smile, bright warm sunlight, cheerful mood, portrait photo",
            _NEGATIVE + ", sad, frown, dark",
            0.45,
            7.0,
        ),
        StylePreset(
            "sadness",
            "Sadness",
            "Грусть",
            "{caption}, sad melancholic expression, tears, rainy blue mood, dim light, portrait photo",
            _NEGATIVE + ", smile, happy, bright",
            0.45,
            7.0,
        ),
        StylePreset(
            "panda",
            "Panda mask",
            "Маска панды",
            "{caption}, wearing a cute panda mask, black and white panda face, fluffy ears, portrait photo",
            _NEGATIVE + ", human face visible",
            0.55,
            7.5,
        ),
    )
}

ARTISTS: tuple[str, ...] = ("vangogh", "banksy", "delaunay", "malevich")


def get_style(style_id: str) -> StylePreset | None:
    return STYLES.get(style_id.strip().lower())
