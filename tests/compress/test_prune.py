"""The pruning schedule follows the real number of steps and ends on a mask-update step."""

from __future__ import annotations

import pytest

from medtk.compress.prune import plan_schedule


@pytest.mark.parametrize("epochs, steps", [(1, 1), (1, 8), (2, 8), (3, 148), (10, 500)])
def test_schedule_ends_on_an_update_step_inside_training(epochs: int, steps: int):
    schedule = plan_schedule(0.5, epochs, steps)
    assert schedule.total_steps == epochs * steps
    assert 1 <= schedule.end_step <= max(1, schedule.total_steps)
    assert schedule.end_step % schedule.frequency == 0
    assert 1 <= schedule.frequency <= 100


def test_long_runs_keep_recovery_steps_after_the_ramp():
    schedule = plan_schedule(0.5, 3, 148)
    assert schedule.total_steps - schedule.end_step >= 0.15 * schedule.total_steps
