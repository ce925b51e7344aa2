"""How long a new album would wait: the queue's answer to "is this a burst?" (fast mode, issue 10).

Estimated from what the queue holds, so it works on tiny models and on a GPU alike: the unfinished
interactive jobs of each schedule, times the mean run time (started_at → finished_at) of that schedule's
recently finished jobs, divided by the interactive jobs running now. That divisor is Little's law
(throughput = jobs in progress / time each spends in progress): a worker holds several jobs at once (the
batch it paints and the next one, claimed and decoded ahead; fast albums two to a batch), and each job's
run time spans them, so dividing by the number of workers instead counted every album two to four times
over. Before any job of a schedule has finished, `DEFAULT_ALBUM_S` stands in for a normal one and
`FAST_SHARE` of a normal one for a fast one.

Already queued jobs count with the schedule they were queued with, so under a burst the estimate falls
as the queue fills with quick albums, and new albums go back to the normal schedule by themselves once
the wait is under the threshold again. Nothing already queued is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs import sql

DEFAULT_ALBUM_S = 2.0  # a normal album until one has been timed (an H100 takes 0.7 s, a small GPU more)
FAST_SHARE = 0.25  # a fast album's time over a normal one's, until one has been timed (4 steps vs 18-21)


@dataclass(frozen=True)
class QueueLoad:
    normal_jobs: int  # queued or running interactive jobs on the normal schedule
    fast_jobs: int  # ... on the fast one
    normal_s: float | None  # mean run time of recent finished normal jobs; None: none yet
    fast_s: float | None
    running: int  # interactive jobs in progress now, over all workers

    @classmethod
    def from_row(cls, row: Any) -> QueueLoad:
        normal_jobs, fast_jobs, normal_s, fast_s, running = tuple(row)
        return cls(int(normal_jobs), int(fast_jobs), normal_s, fast_s, int(running))

    def per_job_s(self) -> tuple[float, float]:
        """(normal, fast) seconds per job: measured where possible, else derived from the other."""
        normal = self.normal_s or (self.fast_s / FAST_SHARE if self.fast_s else DEFAULT_ALBUM_S)
        return normal, self.fast_s or normal * FAST_SHARE


def expected_wait_s(load: QueueLoad) -> float:
    """Seconds until a job queued now would start (its own run time not included)."""
    normal, fast = load.per_job_s()
    return (load.normal_jobs * normal + load.fast_jobs * fast) / max(1, load.running)


def burst(wait_s: float, threshold_s: float) -> bool:
    """Should a new album go out on the fast schedule? threshold 0 switches the rule off."""
    return threshold_s > 0 and wait_s >= threshold_s


def load_statement(dialect: str = "sqlite") -> tuple[str, dict[str, str]]:
    """sql.QUEUE_LOAD for the interactive kinds on this engine ("sqlite" | "postgresql"), and its parameters."""
    from contract.kinds import INTERACTIVE_KINDS  # here: contract.kinds imports jobs.errors, thus jobs

    kinds, params = sql.kinds_clause(tuple(str(k) for k in INTERACTIVE_KINDS))
    return sql.QUEUE_LOAD.format(kinds=kinds, fast=sql.FAST_FLAG[dialect]), params
