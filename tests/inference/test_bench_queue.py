"""The bench's queue drains on the tiny models: real stylize jobs through real worker processes, normal and
fast, summarised as the GPU run reports them (albums per hour, p50/p95, the worker's start)."""

from __future__ import annotations

from contract.kinds import StylizeResult
from jobs import JobQueue


def test_queue_drains_normal_and_fast_albums_through_worker_processes(bench_on_tiny, tmp_path):
    report = bench_on_tiny(
        *[
            "--queue",
            "3",
            "--queue-fast",
            "3",
            "--aspects",
            "1:1,4:3",
            "--queue-dir",
            str(tmp_path / "drains"),
        ],
        *["--queue-only", "--warm-only"],
    )
    assert "queue_cold" not in report  # --warm-only
    for key in ("queue_warm", "queue_fast"):
        drain = report[key]
        assert (drain["done"], drain["failed"], drain["jobs"]) == (3, 0, 3), drain
        assert drain["albums_per_hour"] > 0 and drain["job_p95_s"] >= drain["job_p50_s"] > 0
        assert len(drain["start_s"]) == 1
    for folder, fast in (("warm-*", False), ("fast-*", True)):
        (run_dir,) = (tmp_path / "drains").glob(folder)
        queue = JobQueue(run_dir / "artbooth.sqlite3")
        results = [StylizeResult.from_dict(queue.get(i).result) for i in (1, 2, 3)]
        queue.close()
        assert len(results) == 3 and all(r.fast is fast and len(r.images) == 4 for r in results)
