"""The one place that knows there are two databases: SQLite (embedded default) and PostgreSQL.

Every statement in `jobs/` is written once, in the subset both engines run, with SQLite's placeholders
(`?`, `:name`). What differs is kept here, not spread over the queries:

- placeholders: `to_pyformat` rewrites them for psycopg (`%s`, `%(name)s`; a literal `%` becomes `%%`);
- rows: both sides return rows that index by position and by column name (sqlite3.Row, `Row` below);
- transactions: `transaction()` is `BEGIN IMMEDIATE` on SQLite (the write lock up front, so two claims
  cannot both read the same head of the queue) and psycopg's `BEGIN … COMMIT` on PostgreSQL;
- the claim's row lock (`claim_lock`): nothing on SQLite (the write lock is the database's), `FOR UPDATE
  SKIP LOCKED` on PostgreSQL, so concurrent workers skip each other's head row instead of waiting;
- wake-ups (`notify`): PostgreSQL's NOTIFY; on SQLite a no-op (jobs/wakeup.py polls there).

psycopg 3 rather than asyncpg: one driver with a sync API (the worker, its heartbeat thread) and an async
one (the bot) over the same pyformat placeholders and rows, LISTEN/NOTIFY on both, and a binary wheel.
asyncpg is async only and numbers its placeholders ($1), which would give the worker a second driver.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg

from jobs import sql

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"
# Errors a caller may retry (a locked SQLite file, a dropped PostgreSQL connection), whatever the backend.
DatabaseError = (sqlite3.Error, psycopg.Error)


@dataclass(frozen=True)
class Target:
    """Where the queue lives: `DATABASE_URL`, or the embedded SQLite file."""

    url: str | None  # postgresql://…; None for SQLite
    path: Path | None  # the SQLite file

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        return self.url.split("@")[-1] if self.url else str(self.path)  # no password in logs


def target_of(where: str | Path | Target) -> Target:
    """A Path or a plain string is a SQLite file; `sqlite:///path` too; `postgresql://…` is PostgreSQL."""
    if isinstance(where, Target):
        return where
    text = str(where)
    if text.startswith(POSTGRES_SCHEMES):
        return Target(url=text, path=None)
    if text.startswith(SQLITE_SCHEME):
        return Target(url=None, path=Path(text[len(SQLITE_SCHEME) :]))
    if "://" in text:
        raise ValueError(
            f"DATABASE_URL must be sqlite:///path or postgresql://…, not {text.split('://')[0]}://"
        )
    return Target(url=None, path=Path(text))


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|(?<![\w:]):([A-Za-z_]\w*)|\?|%")


@lru_cache(maxsize=512)
def to_pyformat(statement: str) -> str:
    """SQLite placeholders → psycopg's; quoted text and `::` casts are left alone."""

    def replace(match: re.Match) -> str:
        text = match.group(0)
        if match.group(1):
            return f"%({match.group(1)})s"
        return {"?": "%s", "%": "%%"}.get(text, text)

    return _TOKENS.sub(replace, statement)


class Row(tuple):
    """A PostgreSQL row that reads like sqlite3.Row: row[0], row['name'], dict(row)."""

    def __new__(cls, values: Any, names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self._names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


class SqliteConnection:
    """sqlite3 in autocommit mode (transactions are explicit), WAL, busy_timeout and secure_delete set."""

    dialect = "sqlite"
    claim_lock = ""

    def __init__(self, path: Path, *, threads: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.raw = sqlite3.connect(
            path, isolation_level=None, timeout=sql.BUSY_TIMEOUT_MS / 1000, check_same_thread=not threads
        )
        self.raw.row_factory = sqlite3.Row
        self.raw.execute(f"PRAGMA busy_timeout = {sql.BUSY_TIMEOUT_MS}")
        for pragma in sql.PRAGMAS:
            self.raw.execute(pragma)

    def execute(self, statement: str, params: Any = ()) -> Any:
        return self.raw.execute(statement, params)

    @contextmanager
    def transaction(self):
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def one_write(self):
        """Around a single writing statement that reads first (a claim): the write lock up front, since an
        autocommitted read that upgrades to a write meets SQLITE_BUSY without waiting for the lock."""
        return self.transaction()

    def notify(self, channel: str) -> None:
        """SQLite has no NOTIFY: waiters poll (jobs/wakeup.py)."""

    def close(self) -> None:
        self.raw.close()


class PostgresConnection:
    """psycopg 3, autocommit: one statement is one transaction unless `transaction()` says otherwise."""

    dialect = "postgresql"
    claim_lock = "FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str):
        self.raw = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
        self.schema = self.raw.execute("SELECT current_schema()").fetchone()[0]

    def execute(self, statement: str, params: Any = ()) -> Any:
        return self.raw.execute(to_pyformat(statement), params)

    @contextmanager
    def transaction(self):
        with self.raw.transaction():
            yield self

    def one_write(self):
        """One statement is atomic on its own: no BEGIN and COMMIT round trips around it."""
        return nullcontext(self)

    def notify(self, channel: str) -> None:
        self.raw.execute("SELECT pg_notify(%s, '')", (channel_name(channel, self.schema),))

    def close(self) -> None:
        self.raw.close()


Connection = SqliteConnection | PostgresConnection


def channel_name(channel: str, schema: str) -> str:
    """One channel per schema: databases that hold several deployments (or test runs) do not wake each other."""
    return f"artbooth_{channel}_{schema}"[:63]


def connect(where: str | Path | Target, *, threads: bool = False) -> Connection:
    """threads=True: the caller shares the connection between threads under a lock of its own."""
    target = target_of(where)
    return (
        PostgresConnection(target.url)
        if target.is_postgres
        else SqliteConnection(target.path, threads=threads)
    )


class AsyncPostgres:
    """The bot's PostgreSQL connection, shaped like aiosqlite's: `await (await db.execute(q, p)).fetchone()`.

    One connection shared by the bot's tasks, as with aiosqlite: psycopg serialises its operations, and
    every statement autocommits (jobs/store.py explains why no transaction spans awaits).
    """

    dialect = "postgresql"

    def __init__(self, raw: psycopg.AsyncConnection, schema: str, url: str):
        self.raw, self.schema, self.url = raw, schema, url

    @classmethod
    async def open(cls, url: str) -> AsyncPostgres:
        raw = await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=_row_factory)
        schema = (await (await raw.execute("SELECT current_schema()")).fetchone())[0]
        return cls(raw, schema, url)

    async def execute(self, statement: str, params: Any = ()) -> Any:
        return await self.raw.execute(to_pyformat(statement), params)

    async def notify(self, channel: str) -> None:
        await self.raw.execute("SELECT pg_notify(%s, '')", (channel_name(channel, self.schema),))

    async def close(self) -> None:
        await self.raw.close()
