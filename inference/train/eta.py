"""The training's ETA from the step rate measured over the last few progress reports.

The mean over the whole loop (`busy / done`) carries the first steps' warm-up (graph capture, allocator
growth) and any slow stretch for the rest of the run, so the ETA lagged behind the real speed. A short
window follows the rate the trainer has now; time yielded to interactive jobs is already left out of
`busy` by the caller, so a pause does not read as slowness.
"""

from __future__ import annotations

from collections import deque


class StepRate:
    def __init__(self, window: int = 5):
        self._samples: deque[tuple[int, float]] = deque([(0, 0.0)], maxlen=window + 1)

    def update(self, done: int, busy_s: float) -> None:
        """`done` optimizer steps took `busy_s` seconds of the trainer's own time so far."""
        self._samples.append((done, busy_s))

    def seconds_per_step(self) -> float | None:
        (first_done, first_busy), (last_done, last_busy) = self._samples[0], self._samples[-1]
        if last_done <= first_done:
            return None
        return max(0.0, last_busy - first_busy) / (last_done - first_done)

    def eta_s(self, remaining_steps: int) -> float | None:
        per_step = self.seconds_per_step()
        return None if per_step is None else per_step * max(0, remaining_steps)
