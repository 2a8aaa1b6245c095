"""Stratified bootstrap intervals: correct AUC by ranks, stratification, coverage of the point value, speed."""

import json
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medtk.clinical.bootstrap import bootstrap_intervals, rank_auc
from medtk.clinical.operating_point import at_threshold
from medtk.errors import ConfigError
from tests.realscores import pneumonia_logits


@pytest.fixture(scope="module")
def test_split():
    logits, labels = pneumonia_logits()["test"]
    return labels == 1, np.round(1.0 / (1.0 + np.exp(-logits[:, 1])), 2)  # rounded: many ties, as int8 gives


def test_rank_auc_equals_sklearn_with_ties(test_split):
    y, s = test_split
    assert rank_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(20):  # and on random resamples with heavy ties
        idx = rng.integers(0, len(y), len(y))
        if y[idx].all() or not y[idx].any():
            continue
        assert rank_auc(y[idx], s[idx]) == pytest.approx(roc_auc_score(y[idx], s[idx]), abs=1e-12)
    assert rank_auc(np.ones(3, bool), np.arange(3.0)) is None


def test_vectorised_resamples_equal_sklearn_on_the_same_draws(test_split):
    """The count-vector AUC of each resample is sklearn's AUC of the images that resample drew."""
    from medtk.clinical.bootstrap import _resample_chunk

    y, s = test_split
    positives, negatives = np.sort(s[y]), np.sort(s[~y])
    values = _resample_chunk(np.random.default_rng(7), positives, negatives, 5, 0.5)
    rng = np.random.default_rng(7)  # the same stream: positives' draws, then negatives'
    pos_idx = rng.integers(0, len(positives), (5, len(positives)))
    neg_idx = rng.integers(0, len(negatives), (5, len(negatives)))
    for b in range(5):
        ys = np.r_[np.ones(len(positives), bool), np.zeros(len(negatives), bool)]
        ss = np.r_[positives[pos_idx[b]], negatives[neg_idx[b]]]
        assert values["auc"][b] == pytest.approx(roc_auc_score(ys, ss), abs=1e-12)
        c = at_threshold(ys, ss, 0.5)
        assert values["sensitivity"][b] == pytest.approx(c.sensitivity)
        assert values["ppv"][b] == pytest.approx(c.ppv) and values["npv"][b] == pytest.approx(c.npv)


def test_intervals_contain_the_point_values_and_are_seeded(test_split):
    y, s = test_split
    result = bootstrap_intervals(y, s, threshold=0.5, seed=3)
    point = at_threshold(y, s, 0.5)
    for name, value in (("auc", roc_auc_score(y, s)), ("sensitivity", point.sensitivity),
                        ("specificity", point.specificity), ("ppv", point.ppv), ("npv", point.npv)):
        lo, hi = getattr(result, name)
        assert lo < value < hi, name
        assert hi - lo < 0.2, name  # 624 images: intervals of a few points, not the whole range
    assert result == bootstrap_intervals(y, s, threshold=0.5, seed=3)
    assert result != bootstrap_intervals(y, s, threshold=0.5, seed=4)
    assert result.resamples == 2000 and result.level == 0.95


def test_resamples_keep_the_class_counts(test_split):
    """Stratified: sensitivity is always a multiple of 1/n_pos, and never undefined."""
    from medtk.clinical.bootstrap import _resample_chunk

    y, s = test_split
    values = _resample_chunk(np.random.default_rng(0), np.sort(s[y]), np.sort(s[~y]), 200, 0.5)
    n_pos = int(y.sum())
    assert np.isfinite(values["sensitivity"]).all() and np.isfinite(values["auc"]).all()
    np.testing.assert_allclose(values["sensitivity"] * n_pos, np.round(values["sensitivity"] * n_pos), atol=1e-9)


def test_fast_enough_for_every_evaluation(test_split):
    y, s = test_split
    started = time.perf_counter()
    bootstrap_intervals(y, s, threshold=0.5)
    assert time.perf_counter() - started < 1.0


def test_undefined_metrics_are_none_and_json_is_strict():
    y = np.ones(10, dtype=bool)
    result = bootstrap_intervals(y, np.linspace(0, 1, 10), threshold=2.0)
    assert result.auc is None and result.specificity is None and result.ppv is None
    assert result.sensitivity == (0.0, 0.0)
    json.dumps(result.to_dict(), allow_nan=False)
    assert bootstrap_intervals(y, np.linspace(0, 1, 10)).to_dict()["sensitivity"] is None  # no threshold given


def test_too_few_resamples_is_a_config_error():
    with pytest.raises(ConfigError, match="resamples must be an integer >= 1000, got 100"):
        bootstrap_intervals(np.array([0, 1]), np.array([0.1, 0.9]), resamples=100)


def test_paired_auc_drop_resamples_the_same_images_for_both_scorers(test_split):
    """Each resample's drop is sklearn's AUC difference on the images that resample drew (for both)."""
    from medtk.clinical.bootstrap import _draw_counts, _weighted_auc

    y, s = test_split
    other = s + np.random.default_rng(2).normal(0, 0.05, len(s))
    rng = np.random.default_rng(5)
    w_pos, w_neg = _draw_counts(rng, int(y.sum()), 3), _draw_counts(rng, int((~y).sum()), 3)
    drops = _weighted_auc(s[y], s[~y], w_pos, w_neg) - _weighted_auc(other[y], other[~y], w_pos, w_neg)
    for b in range(3):
        pick = np.r_[np.repeat(np.flatnonzero(y), w_pos[b].astype(int)), np.repeat(np.flatnonzero(~y), w_neg[b].astype(int))]
        expected = roc_auc_score(y[pick], s[pick]) - roc_auc_score(y[pick], other[pick])
        assert drops[b] == pytest.approx(expected, abs=1e-12)


def test_paired_auc_drop_is_tighter_than_the_two_aucs_apart():
    from medtk.clinical.bootstrap import paired_auc_drop

    logits, labels = pneumonia_logits()["test"]
    y, s = labels == 1, logits[:, 1]
    assert paired_auc_drop(y, s, s) == (0.0, (0.0, 0.0))
    noisy = s + np.random.default_rng(2).normal(0, 0.2 * s.std(), len(s))  # int8-like noise on the logits
    drop, (lo, hi) = paired_auc_drop(y, s, noisy, seed=1)
    assert drop == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, noisy), abs=1e-12)
    assert lo < drop < hi
    alone = [bootstrap_intervals(y, scores, seed=1).auc for scores in (s, noisy)]
    assert hi - lo < min(b - a for a, b in alone) / 2, (hi - lo, alone)  # what the two share cancels
    with pytest.raises(ValueError, match="both classes"):
        paired_auc_drop(np.ones(4, bool), np.arange(4.0), np.arange(4.0))
