"""Preset scenes for /portrait. Torch-free: the bot shows them as a keyboard."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortraitScene:
    id: str
    ru: str
    en: str
    prompt: str  # what follows "a photo of sks man, "


PORTRAIT_SCENES: tuple[PortraitScene, ...] = (
    PortraitScene("forest", "В лесу", "In a forest", "standing in a sunlit forest, tall trees, soft light"),
    PortraitScene("desert", "В пустыне", "In the desert", "in a sandy desert, dunes, golden hour"),
    PortraitScene(
        "mountains", "В снежных горах", "Snowy mountains", "in snowy mountains, winter jacket, blue sky"
    ),
    PortraitScene(
        "street", "На улице", "On the street", "on a city street, urban background, street photography"
    ),
    PortraitScene("kitchen", "На кухне", "In the kitchen", "cooking in a cozy kitchen, warm light"),
    PortraitScene("office", "В офисе", "In the office", "in a modern office, business suit, at a desk"),
    PortraitScene(
        "football", "Футбол", "Football", "playing football on a stadium pitch, sports photography"
    ),
    PortraitScene("moon", "На Луне", "On the Moon", "on the moon, astronaut suit, earth in the black sky"),
    PortraitScene(
        "acropolis", "У Акрополя", "At the Acropolis", "at the Acropolis in Athens, ancient ruins, sunny day"
    ),
    PortraitScene("ice_cream", "Ест мороженое", "Eating ice cream", "eating ice cream, summer park, smiling"),
)
SCENES_BY_ID: dict[str, PortraitScene] = {scene.id: scene for scene in PORTRAIT_SCENES}
