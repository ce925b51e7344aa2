"""Where uploads, selfies, results and LoRAs live, for the bot and every worker: `open_files(settings)`.

A file is named by its path relative to DATA_DIR (`uploads/<user>/…`, `results/<job>/…`): the name job
payloads and results carry. Both stores hand out real local paths, because what reads the files wants
paths (Pillow, safetensors, aiogram's FSInputFile):

- `LocalFiles` (FILE_STORE=local, the default with SQLite): DATA_DIR *is* the store. One host, or
  several sharing one disk.
- `DatabaseFiles` (FILE_STORE=database, the default with PostgreSQL): the bytes are rows of the `files`
  table, in the database every host already reaches; DATA_DIR holds working copies only. A writer
  `publish`es the file it wrote; a reader `fetch`es it (copied down when it is not here); a worker
  `evict`s its copies when the job is over, so that a /forget, which deletes the rows and the bot's
  copies, leaves nothing on any host. Chosen over an object store (S3, MinIO) because it needs no
  other service, no credentials on GPU hosts, and /forget deletes files where it deletes rows; the
  files are small (albums of a few hundred KB, uploads ≤ 20 MB, LoRAs of a few MB). A deployment that
  outgrows that adds a third class with these five methods.
"""

from __future__ import annotations

import shutil
import threading
import time
from functools import cache
from pathlib import Path

from contract.settings import SharedSettings
from jobs.db import Target, connect, target_of

UPSERT = """
INSERT INTO files (path, data, created_at) VALUES (?, ?, ?)
ON CONFLICT (path) DO UPDATE SET data = excluded.data, created_at = excluded.created_at
"""
READ = "SELECT data FROM files WHERE path = ?"
EXISTS = "SELECT 1 FROM files WHERE path = ?"
UNDER = "SELECT path FROM files WHERE substr(path, 1, ?) = ?"
USER_FOLDERS = ("uploads", "selfies", "loras", "results")
DELETE_UNDER = "DELETE FROM files WHERE path = ? OR substr(path, 1, ?) = ?"  # the file, or a folder's files


class LocalFiles:
    """DATA_DIR is the store: publish and evict have nothing to do."""

    shared = False

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    def path(self, name: str) -> Path:
        return self.data_dir / name

    def publish(self, name: str) -> None:
        """The file at path(name) is written: make it reachable from every host."""

    def fetch(self, name: str) -> Path:
        """A local path to read the file from; FileNotFoundError when there is none."""
        path = self.path(name)
        if not path.is_file():
            raise FileNotFoundError(path)
        return path

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, prefixes: list[str]) -> None:
        """Files and folders (`loras/7`, `results/12`), here and in the store."""
        for prefix in prefixes:
            path = self.path(prefix)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink(missing_ok=True)

    def owners(self, top: str) -> set[str]:
        """The names of the folders under `top` (user ids under uploads/, job ids under results/)."""
        folder = self.path(top)
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def evict(self, names: list[str]) -> None:
        """This host's copies of these files are no longer needed (a job is over)."""

    def drop_copies(self) -> None:
        """At a worker's start: copies that a killed predecessor could not evict."""


class DatabaseFiles(LocalFiles):
    """The `files` table holds the bytes (migrations/0005_files.sql); DATA_DIR has working copies."""

    shared = True

    def __init__(self, data_dir: Path, db: str | Path | Target):
        super().__init__(data_dir)
        self.conn = connect(target_of(db), threads=True)
        self.lock = threading.Lock()  # the bot calls from several threads (asyncio.to_thread)

    def _execute(self, statement: str, params: tuple) -> list:
        with self.lock:
            cursor = self.conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def publish(self, name: str) -> None:
        self._execute(UPSERT, (name, self.path(name).read_bytes(), time.time()))

    def fetch(self, name: str) -> Path:
        path = self.path(name)
        if path.is_file():
            return path
        rows = self._execute(READ, (name,))
        if not rows:
            raise FileNotFoundError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{threading.get_ident()}.part")
        partial.write_bytes(bytes(rows[0][0]))
        partial.replace(path)
        return path

    def exists(self, name: str) -> bool:
        return self.path(name).is_file() or bool(self._execute(EXISTS, (name,)))

    def delete(self, prefixes: list[str]) -> None:
        for prefix in prefixes:  # the rows first: a local copy alone is re-made by nobody
            folder = prefix.rstrip("/") + "/"  # loras/7 is not loras/70
            self._execute(DELETE_UNDER, (prefix, len(folder), folder))
        super().delete(prefixes)

    def owners(self, top: str) -> set[str]:
        start = top.rstrip("/") + "/"
        stored = {row[0][len(start) :].split("/", 1)[0] for row in self._execute(UNDER, (len(start), start))}
        return stored | super().owners(top)

    def drop_copies(self) -> None:
        # Working copies only: the rows hold the files. (An embedded worker shares DATA_DIR with the bot;
        # an upload caught between its download and its publish fails that update, which is retried.)
        super().delete(list(USER_FOLDERS))

    def evict(self, names: list[str]) -> None:
        for name in names:
            self.path(name).unlink(missing_ok=True)
            _remove_empty_parents(self.path(name).parent, self.data_dir)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            return
        folder = folder.parent


@cache
def _open(data_dir: Path, kind: str, database: str | Path) -> LocalFiles:
    return DatabaseFiles(data_dir, database) if kind == "database" else LocalFiles(data_dir)


def open_files(settings: SharedSettings) -> LocalFiles:
    """The store FILE_STORE names; unset, the database on PostgreSQL (no shared disk assumed), else local."""
    kind = settings.file_store or ("database" if target_of(settings.database).is_postgres else "local")
    if kind not in ("local", "database"):
        raise ValueError(f"FILE_STORE must be local or database, not {kind!r}")
    return _open(Path(settings.data_dir), kind, settings.database)
