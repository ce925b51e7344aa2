"""The training's ETA follows the step rate it measures now (issue 12, item 13)."""

from __future__ import annotations

from inference.train.eta import StepRate


def test_eta_follows_the_recent_step_rate_not_the_warm_up():
    rate = StepRate(window=3)
    assert rate.eta_s(100) is None  # nothing measured yet
    busy = 20.0  # the first step: 20 s of warm-up
    rate.update(1, busy)
    assert rate.eta_s(99) == 99 * 20.0
    etas = []
    for done in range(2, 12):  # then 0.5 s per step
        busy += 0.5
        rate.update(done, busy)
        etas.append(rate.eta_s(100 - done))
    assert etas == sorted(etas, reverse=True)  # falls at every report, never frozen
    assert etas[-1] == (100 - 11) * 0.5  # once the warm-up left the window: the real rate
    # The whole-loop mean would still say ~2.3 s per step.
    assert busy / 11 > 2.0


def test_eta_is_zero_at_the_end():
    rate = StepRate()
    rate.update(10, 5.0)
    assert rate.eta_s(0) == 0.0
