"""The file store (jobs/files.py): two hosts with their own DATA_DIR share files through the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.settings import SharedSettings
from jobs import JobQueue
from jobs.files import DatabaseFiles, LocalFiles, open_files


def hosts(tmp_path: Path, db) -> tuple[DatabaseFiles, DatabaseFiles]:
    JobQueue(db).close()  # migrated
    return DatabaseFiles(tmp_path / "bot", db), DatabaseFiles(tmp_path / "worker", db)


def write(store: LocalFiles, name: str, data: bytes) -> None:
    store.path(name).parent.mkdir(parents=True, exist_ok=True)
    store.path(name).write_bytes(data)
    store.publish(name)


def test_a_file_published_on_one_host_is_fetched_on_another(tmp_path: Path, db) -> None:
    bot, worker = hosts(tmp_path, db)
    write(bot, "uploads/7/1-a.jpg", b"\xff\xd8 photo")
    assert not worker.path("uploads/7/1-a.jpg").exists()
    assert worker.exists("uploads/7/1-a.jpg")
    assert worker.fetch("uploads/7/1-a.jpg").read_bytes() == b"\xff\xd8 photo"
    with pytest.raises(FileNotFoundError):
        worker.fetch("uploads/7/2-b.jpg")
    write(worker, "results/3/00_vangogh.jpg", b"album")
    worker.evict(["uploads/7/1-a.jpg", "results/3/00_vangogh.jpg"])  # the job is over
    assert not any(worker.data_dir.rglob("*"))  # nothing of the user stays on the worker's host
    assert bot.fetch("results/3/00_vangogh.jpg").read_bytes() == b"album"


def test_delete_removes_rows_and_copies_of_that_user_only(tmp_path: Path, db) -> None:
    bot, worker = hosts(tmp_path, db)
    for name in ("uploads/7/a.jpg", "loras/7/lora.safetensors", "uploads/70/b.jpg", "results/5/00.jpg"):
        write(bot, name, name.encode())
    worker.fetch("uploads/7/a.jpg")
    assert bot.owners("uploads") == {"7", "70"} and worker.owners("uploads") == {"7", "70"}
    worker.delete(["uploads/7", "loras/7", "results/5"])
    bot.delete(["uploads/7", "loras/7", "results/5"])
    for store in (bot, worker):
        assert not store.exists("uploads/7/a.jpg") and not store.exists("loras/7/lora.safetensors")
        assert store.fetch("uploads/70/b.jpg").read_bytes() == b"uploads/70/b.jpg"
        assert store.owners("uploads") == {"70"} and store.owners("results") == set()


def test_the_store_follows_the_database_unless_file_store_says(tmp_path: Path) -> None:
    assert type(open_files(SharedSettings(data_dir=tmp_path))) is LocalFiles
    url = "postgresql://nobody@127.0.0.1:1/none"
    assert (
        type(open_files(SharedSettings(data_dir=tmp_path, database_url=url, file_store="local")))
        is LocalFiles
    )
    with pytest.raises(ValueError, match="FILE_STORE"):
        open_files(SharedSettings(data_dir=tmp_path, file_store="s3"))
