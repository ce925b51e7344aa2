"""The bot's settings, from the environment or `.env` (pydantic-settings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.settings import DEFAULT_DATA_DIR, DEFAULT_DEVICE, DEFAULT_MODELS, SharedSettings

# <bot id>:<secret> as @BotFather hands it out (the secret is 35 characters today; accept 30 or more).
TOKEN_SHAPE = re.compile(r"^\d+:[\w-]{30,}$")
# What setWebhook accepts as secret_token.
WEBHOOK_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    telegram_api_base: str | None = None  # None: Telegram's own api.telegram.org
    telegram_api_local: bool = False  # the server at TELEGRAM_API_BASE runs with --local (shares our disk)
    # Read by the worker too (contract/settings.py); the embedded worker gets them through `shared`.
    data_dir: Path = DEFAULT_DATA_DIR
    models: str = DEFAULT_MODELS
    device: str = DEFAULT_DEVICE
    inference: Literal["embedded", "external"] = "embedded"
    database_url: str | None = None  # postgresql://… (README: Several hosts); unset: SQLite in DATA_DIR
    file_store: Literal["local", "database"] | None = None  # None: database on PostgreSQL, else local
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    # Diffusion steps per picture; None: the worker's default.
    stylize_steps: int | None = Field(None, ge=1, le=200)

    # Limits
    max_jobs_per_user: int = Field(3, ge=1)  # unfinished (queued + running) jobs per user
    max_queue: int = Field(200, ge=1)  # queued jobs of all users
    max_download_mb: int = Field(20, ge=1, le=2000)  # the cloud Bot API serves files up to 20 MB
    notice_interval_s: float = Field(10.0, ge=0)  # at most one "too many" notice per user this often
    # Fast mode under a burst: a new album whose expected wait passes this goes out on the few-step
    # schedule (jobs/wait.py); 0 turns the rule off.
    fast_mode_wait_s: float = Field(20.0, ge=0)

    # /train
    keep_selfies: bool = False  # False: a user's selfies are deleted once their training succeeds
    # Optimizer steps per LoRA; None: the worker's default.
    train_steps: int | None = Field(None, ge=1, le=5000)

    # Timings
    polling_timeout_s: int = Field(10, ge=0)  # getUpdates long-poll
    delivery_poll_s: float = Field(0.5, gt=0)  # how often the bot looks for finished jobs
    chat_action_every_s: float = Field(4.0, gt=0)  # Telegram shows an action for 5 s
    worker_lease_s: float = Field(60.0, gt=0)  # the embedded worker's --lease
    worker_stop_timeout_s: float = Field(12.0, gt=0)  # SIGTERM, then SIGKILL after this long
    worker_config_retry_s: float = Field(
        300.0, gt=0
    )  # a worker that cannot start as configured: retry this often
    log_level: str = "INFO"

    # Flood control (bot/pacing.py): Telegram allows about 1 message/s per chat and 30/s in all.
    send_interval_per_chat_s: float = Field(1.0, ge=0)
    sends_per_s: float = Field(25.0, gt=0)  # below 30: arrival jitter must not tip a second over
    # Operating (issue 15). Webhook mode when WEBHOOK_URL is set; long polling otherwise.
    webhook_url: str | None = None  # the public https URL Telegram posts to; its path is served locally
    webhook_secret: SecretStr | None = None  # required with WEBHOOK_URL: Telegram's secret_token
    webhook_host: str = "127.0.0.1"  # where the bot listens; a reverse proxy (TLS) forwards to it
    webhook_port: int = Field(8080, ge=1, le=65535)
    metrics_port: int | None = Field(None, ge=0, le=65535)  # Prometheus /metrics; None: off
    metrics_host: str = "127.0.0.1"

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not TOKEN_SHAPE.match(value.get_secret_value().strip()):
            raise ValueError("expected <digits>:<30+ letters, digits, '_' or '-'> as @BotFather gives it")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in re.split(r"[,\s]+", value.strip()) if part)
        return value

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> BotSettings:
        if self.webhook_url:
            secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
            if not WEBHOOK_SECRET_SHAPE.match(secret):
                raise ValueError(
                    "WEBHOOK_SECRET must be set with WEBHOOK_URL: 1-256 of A-Z, a-z, 0-9, _ and -"
                )
        return self

    @property
    def shared(self) -> SharedSettings:
        return SharedSettings(
            data_dir=self.data_dir,
            models=self.models,
            device=self.device,
            database_url=self.database_url,
            file_store=self.file_store,
        )

    @property
    def db_path(self) -> Path:
        return self.shared.db_path

    @property
    def database(self) -> str | Path:
        return self.shared.database

    @property
    def max_download_bytes(self) -> int:
        return self.max_download_mb * 1024 * 1024
