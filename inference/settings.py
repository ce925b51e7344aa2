"""The worker's settings, from the environment (and `.env`). Plain dataclass: no pydantic on GPU hosts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def load_dotenv(path: Path = Path(".env")) -> None:
    """Fill os.environ from KEY=VALUE lines without overriding what is already set."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


@dataclass
class InferenceSettings:
    data_dir: Path = Path("data")
    models: str = "sd15"  # sd15 | tiny | sd15-random
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    overrides: dict[str, str] = field(default_factory=dict)  # role -> hub id or local dir

    @property
    def db_path(self) -> Path:
        return self.data_dir / "artbooth.sqlite3"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> InferenceSettings:
        if env is None:
            load_dotenv()
            env = dict(os.environ)
        # MODEL_BASE=..., MODEL_CAPTION=..., MODEL_VQA=..., MODEL_CONTROL=...: per-role overrides
        overrides = {k[len("MODEL_") :].lower(): v for k, v in env.items() if k.startswith("MODEL_") and v}
        return cls(
            data_dir=Path(env.get("DATA_DIR", "data")),
            models=env.get("MODELS", "sd15"),
            device=env.get("DEVICE", "auto"),
            overrides=overrides,
        )
