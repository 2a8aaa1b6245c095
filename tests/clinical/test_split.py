"""One split's metrics: whatever the class order, every sensitivity is about the finding; the threshold
comes from validation and test only reports at it."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.clinical import Finding, split_metrics
from medtk.clinical.classification import classification_metrics


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of a decent classifier whose finding is class 0."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    p_finding = np.clip(np.where(labels == 0, 0.7, 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
    return labels, np.stack([p_finding, 1 - p_finding], axis=1)


def test_sensitivity_is_the_recall_of_the_finding_even_when_it_is_class_zero():
    labels, probs = _scores(400, 0)
    metrics = classification_metrics(labels, probs, ("malignant", "benign"), positive_index=0)
    decided = probs.argmax(axis=1)
    assert metrics.positive_class == "malignant"
    assert metrics.sensitivity == pytest.approx(np.mean(decided[labels == 0] == 0))
    assert metrics.specificity == pytest.approx(np.mean(decided[labels == 1] == 1))
    default = classification_metrics(labels, probs, ("malignant", "benign"))  # index 1 when nobody says
    assert default.sensitivity == pytest.approx(metrics.specificity)


def test_the_threshold_is_chosen_on_validation_and_test_is_reported_at_it():
    finding = Finding("malignant", 0, "--positive-class")
    val_labels, val_probs = _scores(300, 1)
    test_labels, test_probs = _scores(300, 2)
    val = split_metrics(val_labels, val_probs, ("malignant", "benign"), finding=finding, rule="sensitivity:0.95",
                        chosen_here=True)
    point = val.operating_point
    assert point.met and point.sensitivity >= 0.95 and point.rule == "sensitivity:0.95"
    called = val_probs[:, 0] >= point.threshold
    assert point.sensitivity == pytest.approx(np.mean(called[val_labels == 0]))
    test = split_metrics(test_labels, test_probs, ("malignant", "benign"), finding=finding, rule="sensitivity:0.95",
                         threshold=point.threshold, intervals_seed=0)
    called = test_probs[:, 0] >= point.threshold
    assert test.operating_point.threshold == point.threshold  # not re-chosen on test
    assert test.sensitivity == pytest.approx(np.mean(called[test_labels == 0]))
    assert test.specificity == pytest.approx(np.mean(~called[test_labels == 1]))
    lo, hi = test.ci.sensitivity
    assert lo <= test.sensitivity <= hi and test.ci.resamples >= 1000
    lo, hi = test.ci.auc
    assert lo <= test.auc <= hi
    with pytest.raises(ValueError, match="chosen on validation data only"):
        split_metrics(test_labels, test_probs, ("malignant", "benign"), finding=finding, rule="youden")


def test_calibration_is_reported_before_and_after_the_temperature():
    from medtk.clinical.calibration import fit_temperature, softmax

    labels, probs = _scores(500, 3)
    logits = np.log(probs) * 4.0  # over-confident
    temperature = fit_temperature(logits, labels)
    metrics = split_metrics(labels, softmax(logits, temperature), ("a", "b"), finding=None,
                            logits=logits, temperature=temperature)
    assert temperature > 1.5 and metrics.calibration.ece_after < metrics.calibration.ece_before
    assert metrics.operating_point is None  # multi-class or no finding: argmax only
