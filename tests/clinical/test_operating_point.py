"""Operating points: rule parsing, the threshold each rule picks on validation, and the not-met case."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from medtk.clinical.operating_point import OperatingRule, at_threshold, choose_operating_point, parse_rule
from medtk.errors import ConfigError
from tests.realscores import pneumonia_logits


@pytest.fixture(scope="module")
def val():
    logits, labels = pneumonia_logits()["val"]
    return labels == 1, 1.0 / (1.0 + np.exp(-logits[:, 1]))  # pneumonia probability


@pytest.mark.parametrize(
    "text, rule",
    [
        ("youden", OperatingRule("youden")),
        ("Sensitivity:0.95", OperatingRule("sensitivity", 0.95)),
        (" specificity:0.90 ", OperatingRule("specificity", 0.9)),
        ("threshold:0.3", OperatingRule("threshold", 0.3)),
        ("threshold:0", OperatingRule("threshold", 0.0)),
        ("sensitivity:1", OperatingRule("sensitivity", 1.0)),
    ],
)
def test_rules_parse_to_typed_values(text, rule):
    assert parse_rule(text) == rule
    assert parse_rule(str(rule)) == rule  # the canonical text round-trips


@pytest.mark.parametrize(
    "text, message",
    [
        ("sensitivity:nan", "must be in 0 < X <= 1, got 'nan'"),
        ("specificity:inf", "must be in 0 < X <= 1, got 'inf'"),
        ("sensitivity:1.5", "must be in 0 < X <= 1"),
        ("sensitivity:0", "must be in 0 < X <= 1"),
        ("threshold:-0.1", "must be in 0 <= T <= 1"),
        ("threshold:abc", "'abc' is not a number"),
        ("sensitivity", "is not a rule"),
        ("youden:0.5", "is not a rule"),
        ("f1", "is not a rule"),
        ("", "is not a rule"),
    ],
)
def test_bad_rules_are_one_line_config_errors_listing_the_options(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_rule(text)
    assert "\n" not in str(error.value) and repr(text) in str(error.value)
    if "not a rule" in message or "not a number" in message:
        assert "youden, sensitivity:X, specificity:X" in str(error.value)


def test_at_threshold_matches_sklearn_confusion_matrix(val):
    y, s = val
    c = at_threshold(y, s, 0.5)
    tn, fp, fn, tp = confusion_matrix(y, s >= 0.5).ravel()
    assert (c.tp, c.fp, c.tn, c.fn) == (tp, fp, tn, fn)
    assert c.sensitivity == tp / (tp + fn) and c.specificity == tn / (tn + fp)
    assert c.ppv == tp / (tp + fp) and c.npv == tn / (tn + fn)


def test_undefined_rates_are_none_never_nan():
    c = at_threshold(np.array([True, True]), np.array([0.2, 0.4]), 0.9)
    assert (c.tp, c.fn, c.fp, c.tn) == (0, 2, 0, 0)
    assert c.sensitivity == 0.0 and c.specificity is None and c.ppv is None and c.npv == 0.0


def _all_thresholds(s):
    return np.r_[np.unique(s), np.nextafter(1.0, 2.0)]


@pytest.mark.parametrize(
    "rule, target, traded",
    [("sensitivity:0.95", "sensitivity", "specificity"), ("specificity:0.90", "specificity", "sensitivity")],
)
def test_a_target_is_met_with_the_best_value_of_the_other_rate(val, rule, target, traded):
    y, s = val
    goal = parse_rule(rule).value
    point = choose_operating_point(rule, y, s)
    assert point.met and getattr(point, target) >= goal
    # brute force over every distinct threshold: none meeting the target does better on the other rate
    points = [at_threshold(y, s, t) for t in _all_thresholds(s)]
    assert getattr(point, traded) == max(getattr(c, traded) for c in points if getattr(c, target) >= goal)


def test_the_sensitivity_point_is_the_highest_threshold_meeting_it(val):
    y, s = val
    point = choose_operating_point("sensitivity:0.95", y, s)
    assert at_threshold(y, s, s[s > point.threshold].min()).sensitivity < 0.95  # the next threshold up misses


def test_youden_maximises_sensitivity_plus_specificity(val):
    y, s = val
    point = choose_operating_point(parse_rule("youden"), y, s)
    best = max(at_threshold(y, s, t).sensitivity + at_threshold(y, s, t).specificity for t in _all_thresholds(s))
    assert math.isclose(point.sensitivity + point.specificity, best)


def test_fixed_threshold_is_used_as_given(val):
    y, s = val
    point = choose_operating_point("threshold:0.3", y, s)
    assert point.threshold == 0.3 and point.met
    assert point.sensitivity == at_threshold(y, s, 0.3).sensitivity


def test_a_threshold_reproduces_its_point_through_the_decision_rule(val):
    y, s = val
    for rule in ("youden", "sensitivity:0.95", "specificity:0.9", "sensitivity:0.5"):
        point = choose_operating_point(rule, y, s)
        again = at_threshold(y, s, point.threshold)
        assert (again.sensitivity, again.specificity, again.ppv, again.npv) == (
            point.sensitivity, point.specificity, point.ppv, point.npv)


def test_thresholds_are_finite_where_roc_curve_says_infinity():
    y = np.array([False, False, True, True])
    s = np.array([0.9, 0.99, 0.2, 0.3])  # a negative holds the top score: specificity 1 needs "nobody positive"
    point = choose_operating_point("specificity:1", y, s)
    assert math.isfinite(point.threshold) and 0.99 < point.threshold <= 1.0  # still a probability
    assert point.specificity == 1.0 and point.sensitivity == 0.0 and point.ppv is None and point.met
    json.dumps(point.to_dict(), allow_nan=False)


def test_a_score_of_exactly_one_cannot_be_excluded_and_the_point_says_so():
    """The device accepts thresholds in 0..1 only; "nobody positive" above a score of 1.0 is not one."""
    y = np.array([False, False, True, True])
    point = choose_operating_point("specificity:1", y, np.array([0.9, 1.0, 0.2, 0.3]))
    assert point.threshold == 1.0 and point.specificity == 0.5
    assert not point.met and "exactly 1.0" in point.note


def test_a_rule_that_cannot_be_evaluated_is_applied_as_closely_as_possible_and_says_so():
    no_positives = np.zeros(4, dtype=bool)
    scores = np.array([0.1, 0.4, 0.6, 0.8])
    point = choose_operating_point("sensitivity:0.95", no_positives, scores)
    assert not point.met and "no positive images" in point.note
    assert point.threshold == 0.1 and point.sensitivity is None and point.specificity == 0.0
    point = choose_operating_point("specificity:0.9", ~no_positives, scores)
    assert not point.met and "no negative images" in point.note and point.threshold > 0.8
    assert not choose_operating_point("youden", no_positives, scores).met
    assert choose_operating_point("threshold:0.5", no_positives, scores).met  # a fixed rule needs nothing
    json.dumps(point.to_dict(), allow_nan=False)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN or infinity"):
        choose_operating_point("youden", np.array([0, 1]), np.array([0.2, np.nan]))
