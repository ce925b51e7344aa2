"""Migrations: `migrations/NNNN_name.sql`, applied in order, tracked with PRAGMA user_version."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)))
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {numbers}")
    return found


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> int:
    """Apply the migrations the database has not seen; returns the schema version. Idempotent."""
    conn.execute("BEGIN IMMEDIATE")  # one migrator at a time when the bot and workers start together
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        version = current
        for number, path in list_migrations(directory):
            if number <= current:
                continue
            for statement in _statements(path.read_text(encoding="utf-8")):
                conn.execute(statement)
            version = number
        if version != current:
            conn.execute(f"PRAGMA user_version = {version:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(ln.strip().startswith("--") for ln in buffer.splitlines() if ln.strip()):
        raise RuntimeError(f"unterminated statement in migration: {buffer[:80]!r}")
    return statements
