"""The terminal summary says whether the temperature ships and why (issue 22), not only its value."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from medtk.cli.summary import calibration_line
from medtk.clinical import decide_temperature, measure_calibration


def _calibration(count: int, scale: float):
    """Logits of a classifier that is right 80% of the time, over-confident by `scale`, on `count` images."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, count)
    decided = np.where(rng.random(count) < 0.8, labels, 1 - labels)
    logits = np.stack([decided == 0, decided == 1], axis=1) * scale + rng.normal(0, 0.5, (count, 2))
    decision = decide_temperature(logits, labels)
    return measure_calibration(logits, labels, decision.temperature, decision=decision)


def test_not_applied_says_why_and_shows_the_uncalibrated_numbers():
    c = _calibration(40, 6.0)  # 40 images: fewer than 30 of each class, so the decision cannot be checked
    assert not c.applied
    line = calibration_line(c)
    assert line.startswith("calibration: fitted temperature ") and "not applied (the model ships uncalibrated): " \
        "validation has" in line
    assert line.endswith(f"; test ECE {c.ece_before:.4f}, Brier {c.brier_before:.4f}") and "->" not in line


def test_applied_says_why_and_shows_before_and_after():
    c = _calibration(600, 6.0)  # over-confident and enough images: held-out NLL improves
    assert c.applied
    line = calibration_line(c)
    assert line.startswith(f"calibration: temperature {c.temperature:.3f} applied: held-out NLL change ")
    assert line.endswith(f"test ECE {c.ece_before:.4f} -> {c.ece_after:.4f}, Brier {c.brier_before:.4f} -> "
                         f"{c.brier_after:.4f}")


def test_older_metrics_without_a_reason_still_read():
    c = _calibration(600, 6.0)
    assert calibration_line(replace(c, reason="")).startswith(f"calibration: temperature {c.temperature:.3f} applied;")
    assert calibration_line(replace(c, applied=False, reason="")).startswith("calibration: not applied;")
