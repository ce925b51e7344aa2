"""The worker's settings, from the environment (and `.env`). Plain dataclass: no pydantic on GPU hosts.

What the bot reads too (DATA_DIR, the database, MODELS, DEVICE) comes from contract/settings.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from contract.settings import SharedSettings, load_dotenv


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class InferenceSettings(SharedSettings):
    overrides: dict[str, str] = field(default_factory=dict)  # role -> hub id or local dir
    # GPU speed switches (docs/benchmarks.md says what each measured)
    cuda_graphs: bool = True  # ARTBOOTH_CUDA_GRAPHS: replay the UNet and BLIP decoding as CUDA graphs
    compile: bool = False  # ARTBOOTH_COMPILE: torch.compile the UNet and the VAE decoder
    channels_last: bool = False  # ARTBOOTH_CHANNELS_LAST

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> InferenceSettings:
        if env is None:
            load_dotenv()
            env = dict(os.environ)
        # MODEL_BASE=..., MODEL_CAPTION=..., MODEL_VQA=..., MODEL_CONTROL=...: per-role overrides
        overrides = {k[len("MODEL_") :].lower(): v for k, v in env.items() if k.startswith("MODEL_") and v}
        return cls(
            **cls.shared_from_env(env),  # type: ignore[arg-type]
            overrides=overrides,
            cuda_graphs=_flag(env, "ARTBOOTH_CUDA_GRAPHS", True),
            compile=_flag(env, "ARTBOOTH_COMPILE", False),
            channels_last=_flag(env, "ARTBOOTH_CHANNELS_LAST", False),
        )
