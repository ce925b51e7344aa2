"""A PostgreSQL schema of its own for each test, on the server TEST_DATABASE_URL names.

Other engineers' test runs share the server's `test` database: every test gets a fresh schema with a
random name (the URL's search_path points at it), dropped afterwards, so parallel runs never collide.
Without TEST_DATABASE_URL, or with the server down, PostgreSQL tests are skipped and say how to run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

HOW = "set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (as .ci/run does) to run it"


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        pytest.skip(f"PostgreSQL test: TEST_DATABASE_URL is unset; {HOW}")
    return url


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL whose tables land in a new, empty schema; the schema is dropped on exit."""
    import psycopg

    url = server_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL test: cannot reach {url.split('@')[-1]} ({error}); {HOW}")
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
