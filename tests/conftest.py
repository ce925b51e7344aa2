"""Shared fixtures. Heavy imports stay inside fixtures, so bot tests never import torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory):
    """InferenceSettings for MODELS=tiny on CPU, with every tiny role built once per session.

    Set ARTBOOTH_TEST_MODELS_CACHE=/some/dir to keep the built models between runs.
    """
    from inference.models import resolve
    from inference.presets import ROLES
    from inference.settings import InferenceSettings

    data_dir = tmp_path_factory.mktemp("tiny-data")
    cache = os.environ.get("ARTBOOTH_TEST_MODELS_CACHE")
    if cache:
        (Path(cache) / "models").mkdir(parents=True, exist_ok=True)
        (data_dir / "models").symlink_to(Path(cache).resolve() / "models", target_is_directory=True)
    settings = InferenceSettings(data_dir=data_dir, models="tiny", device="cpu")
    for role in ROLES:
        resolve(settings, role)
    return settings


@pytest.fixture(scope="session")
def tiny_models(tiny_settings):
    """The resident ModelSet (base + caption) on the tiny twins, loaded once per session."""
    from inference.models import load_models

    return load_models(tiny_settings, roles=("base", "caption"))


@pytest.fixture
def bench_on_tiny(tiny_settings, tmp_path, monkeypatch):
    """`bench_on_tiny(*args) -> report`: `python -m inference bench --out … *args` on the session's tiny
    models (CPU), through the real command line; the report as the JSON it wrote."""
    import json

    from inference.__main__ import main

    for key, value in (("DATA_DIR", str(tiny_settings.data_dir)), ("MODELS", "tiny"), ("DEVICE", "cpu")):
        monkeypatch.setenv(key, value)

    def run(*args: str) -> dict:
        out = tmp_path / "bench.json"
        assert main(["bench", "--out", str(out), *args]) == 0
        return json.loads(out.read_text())

    return run


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL with a schema of this test's own (skipped without TEST_DATABASE_URL)."""
    from tests.postgres import fresh_schema

    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path):
    """Where the queue lives, once per backend: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "db.sqlite3"
    return request.getfixturevalue("postgres_url")
