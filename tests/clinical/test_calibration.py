"""Temperature scaling, ECE and Brier on real validation/test logits."""

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from medtk.clinical.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
    measure_calibration,
    negative_log_likelihood,
    softmax,
)
from medtk.errors import ConfigError
from tests.realscores import pneumonia_logits

OVERCONFIDENCE = 4.0  # logits scaled up: the over-confident network temperature scaling is for


@pytest.fixture(scope="module")
def real():
    return pneumonia_logits()


def test_nll_is_sklearns_log_loss(real):
    logits, labels = real["val"]
    expected = log_loss(labels, softmax(logits, 2.0))
    assert math.isclose(negative_log_likelihood(logits, labels, 2.0), expected, rel_tol=1e-9)


def test_fitted_temperature_minimises_validation_nll(real):
    logits, labels = real["val"]
    t = fit_temperature(logits, labels)
    best = negative_log_likelihood(logits, labels, t)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert negative_log_likelihood(logits, labels, other) > best
    # an over-confident copy of the same model needs the temperature scaled by the same factor
    assert math.isclose(fit_temperature(logits * OVERCONFIDENCE, labels), OVERCONFIDENCE * t, rel_tol=1e-3)


def test_temperature_stays_in_bounds():
    logits = np.array([[0.0, 1e-3], [0.0, -1e-3]])  # perfectly separable by a hair: NLL falls as T -> 0
    assert math.isclose(fit_temperature(logits, np.array([1, 0])), 0.05, rel_tol=1e-3)
    with pytest.raises(ConfigError, match=r"temperature bounds \(2.0, 1.0\)"):
        fit_temperature(logits, np.array([1, 0]), bounds=(2.0, 1.0))


def test_calibration_on_test_improves_an_overconfident_model_without_changing_its_ranking(real):
    val_logits, val_labels = real["val"]
    test_logits, test_labels = real["test"]
    t = fit_temperature(val_logits * OVERCONFIDENCE, val_labels)
    result = measure_calibration(test_logits * OVERCONFIDENCE, test_labels, t)
    assert result.temperature == t > 1
    assert result.ece_after < result.ece_before and result.brier_after < result.brier_before
    before, after = softmax(test_logits * OVERCONFIDENCE), softmax(test_logits * OVERCONFIDENCE, t)
    assert (before.argmax(1) == after.argmax(1)).all()
    # the ranking is the logits' (over-confident probabilities saturate to 1.0 and tie; calibrated ones do not)
    margin_auc = roc_auc_score(test_labels, test_logits[:, 1])
    assert roc_auc_score(test_labels, after[:, 1]) == pytest.approx(margin_auc, abs=1e-12)
    assert all(math.isfinite(v) for v in result.to_dict().values() if isinstance(v, float))


def test_brier_is_twice_sklearns_binary_loss(real):
    logits, labels = real["test"]
    probs = softmax(logits)
    assert math.isclose(brier_score(probs, labels), 2 * brier_score_loss(labels, probs[:, 1]), rel_tol=1e-12)
    assert brier_score(np.eye(3), np.arange(3)) == 0.0 and brier_score(np.eye(3), np.array([1, 2, 0])) == 2.0


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    # bins of width 0.5 (bins=2): confidences 0.9, 0.8, 0.6, 0.7 all in (0.5, 1]; accuracy 3/4, mean confidence 0.75
    assert math.isclose(expected_calibration_error(probs, labels, bins=2), 0.0, abs_tol=1e-12)
    # bins=10: (0.8,0.9]: {0.9 right}, (0.7,0.8]: {0.8 wrong}, (0.5,0.6]: {0.6 right}, (0.6,0.7]: {0.7 right}
    expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.6) + abs(1 - 0.7)) / 4
    assert math.isclose(expected_calibration_error(probs, labels, bins=10), expected)
    assert expected_calibration_error(np.array([[0.0, 1.0]]), np.array([1]), bins=15) == 0.0  # confidence 1 binned


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="temperature must be a finite number > 0, got nan"):
        measure_calibration(np.zeros((2, 2)), np.array([0, 1]), float("nan"))
    with pytest.raises(ValueError, match="NaN or infinity"):
        brier_score(np.array([[np.nan, 1.0]]), np.array([1]))
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        expected_calibration_error(np.array([[0.5, 0.5]]), np.array([2]))


def _logits(n_per_class: tuple[int, int], true_temperature: float, seed: int):
    """Binary logits whose calibrated version is softmax(z / true_temperature): labels drawn from it."""
    rng = np.random.default_rng(seed)
    n = 20 * sum(n_per_class)
    margin = rng.normal(0, 2.0, n) * true_temperature
    z = np.stack([np.zeros(n), margin], axis=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin / true_temperature))).astype(int)
    keep = np.concatenate([np.flatnonzero(y == k)[:count] for k, count in enumerate(n_per_class)])
    return z[keep], y[keep]


def test_a_real_miscalibration_with_enough_validation_is_kept():
    from medtk.clinical.calibration import decide_temperature

    z, y = _logits((300, 300), true_temperature=2.0, seed=1)
    decision = decide_temperature(z, y)
    assert decision.applied and decision.temperature == pytest.approx(2.0, rel=0.2)
    assert "applied: held-out NLL change -" in decision.reason


def test_too_few_of_a_class_in_validation_ships_uncalibrated_and_says_why():
    """Issue 22: 78 validation images fitted T = 2.51 and made test ECE 0.137 -> 0.197."""
    from medtk.clinical.calibration import MIN_PER_CLASS, decide_temperature

    z, y = _logits((58, 20), true_temperature=2.0, seed=2)
    decision = decide_temperature(z, y)
    assert not decision.applied and decision.temperature == 1.0 and decision.fitted_temperature > 0
    assert f"needs at least {MIN_PER_CLASS} of every class" in decision.reason
    assert "not applied (the model ships uncalibrated)" in decision.reason


def test_a_temperature_that_does_not_help_on_held_out_folds_is_not_applied():
    from medtk.clinical.calibration import decide_temperature, measure_calibration

    z, y = _logits((400, 400), true_temperature=1.0, seed=3)  # already calibrated: any fitted T is noise
    decision = decide_temperature(z, y)
    assert not decision.applied and "no held-out improvement beyond noise" in decision.reason
    recorded = measure_calibration(z, y, decision.temperature, decision=decision)
    assert recorded.applied is False and recorded.ece_before == recorded.ece_after
    assert recorded.fitted_temperature == decision.fitted_temperature and recorded.reason == decision.reason
