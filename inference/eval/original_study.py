"""What the study the bot grew from recorded: its three subjects, written out as full prompts, and the
CLIP figures it kept, which the models report prints beside ours for the cells both have."""

from __future__ import annotations

# The original study's three subjects, written out as full prompts.
DEFAULT_PROMPTS: list[str] = [
    "A crystal city floating in the clouds, its glass towers and bridges glittering in the golden light "
    "of the setting sun, highly detailed fantasy landscape",
    "A bioluminescent underwater world, where glowing jellyfish, coral reefs and strange fish light up the "
    "deep blue darkness of the ocean floor",
    "An abandoned amusement park at dusk, with a rusted Ferris wheel, a broken carousel and weeds growing "
    "through the cracked pavement under a cloudy sky",
]

# The original study's CLIP figures that were recorded: the plain cosine (not ×100), by (model, scheduler,
# prompt). Its CLIP model was not recorded, so compare with care.
ORIGINAL_COSINES: dict[tuple[str, str, str], float] = {
    ("stabilityai/stable-diffusion-2-1-base", "euler-a", DEFAULT_PROMPTS[0]): 0.3972,
}


def beside_original(images: list[dict]) -> list[dict]:
    """Each recorded figure of the original study, with our mean cosine for the same model, scheduler and
    prompt (None where this run did not make that cell)."""
    rows = []
    for (model, sched, prompt), original in ORIGINAL_COSINES.items():
        ours = [
            u["clip_cosine"]
            for u in images
            if (u["model"], u["scheduler"], u["prompt"]) == (model, sched, prompt)
        ]
        rows.append(
            {
                "model": model,
                "scheduler": sched,
                "prompt": prompt,
                "original_cosine": original,
                "ours_cosine": sum(ours) / len(ours) if ours else None,
                "ours_n": len(ours),
            }
        )
    return rows
