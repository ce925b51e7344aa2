"""The settings both sides read: where the data lives, which database, which models, which device.

The bot (pydantic-settings) and the worker (a plain dataclass: no pydantic on GPU hosts) each have their
own settings class for what only they need; these values are defined here once, and the bot hands them to
the worker it starts through the same environment names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_FILENAME = "artbooth.sqlite3"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_MODELS = "sd15"  # sd15 | tiny | sd15-random
DEFAULT_DEVICE = "auto"  # auto | cpu | cuda | cuda:N


def database_path(data_dir: Path) -> Path:
    """The embedded SQLite database under DATA_DIR."""
    return Path(data_dir) / DB_FILENAME


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
class SharedSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    models: str = DEFAULT_MODELS
    device: str = DEFAULT_DEVICE
    # DATABASE_URL: None (or sqlite:///path) is the embedded SQLite; postgresql://… puts the queue there.
    database_url: str | None = None
    # FILE_STORE: local (DATA_DIR) or database (jobs/files.py); None: database on PostgreSQL, else local.
    file_store: str | None = None

    @property
    def db_path(self) -> Path:
        return database_path(self.data_dir)

    @property
    def database(self) -> str | Path:
        """What jobs.connect / JobQueue / open_db take: the URL, or the SQLite file under DATA_DIR."""
        return self.database_url or self.db_path

    @classmethod
    def shared_from_env(cls, env: dict[str, str]) -> dict[str, object]:
        return dict(
            data_dir=Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR),
            models=env.get("MODELS") or DEFAULT_MODELS,
            device=env.get("DEVICE") or DEFAULT_DEVICE,
            database_url=env.get("DATABASE_URL") or None,
            file_store=env.get("FILE_STORE") or None,
        )

    def to_env(self) -> dict[str, str]:
        """The environment that gives a child process (the embedded worker) these same values."""
        env = {"DATA_DIR": str(Path(self.data_dir).resolve()), "MODELS": self.models, "DEVICE": self.device}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.file_store:
            env["FILE_STORE"] = self.file_store
        return env


# The worker's exit status for "cannot start as configured" (weights missing, no such device): the embedded
# worker's supervisor (bot/supervisor.py) then stops restarting it in a tight loop and tells users that the
# painter is not ready. 78 is sysexits' EX_CONFIG.
CONFIG_ERROR_EXIT = 78
