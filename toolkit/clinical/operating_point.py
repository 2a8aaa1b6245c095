"""The operating point of a binary classifier: the threshold a clinician's yes/no answer depends on.

Argmax is the threshold 0.5 on the positive class, which is rarely what a screening or a confirming
test needs. A rule (`youden`, `sensitivity:0.95`, `specificity:0.90`, `threshold:0.3`) is parsed when
the configuration is loaded, so a typo fails before any image is decoded; the threshold is then chosen
on the validation split (scikit-learn's `roc_curve`) and reported, with the numbers it gives, on test.
The decision is always `score >= threshold`, and every threshold is a finite float.

A target is met whenever the validation split has both classes: the ROC curve runs from "every image
positive" (sensitivity 1) to "no image positive" (specificity 1), so `sensitivity:0.95` can always be
reached, perhaps at a poor specificity, which the reported numbers show. It cannot be met when the
class it is about is absent from the split; the rule is then applied as closely as possible (the
threshold that calls every image positive for a sensitivity target, none for a specificity target,
0.5 for Youden) and the result says `met=False` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from medtk.errors import ConfigError
from medtk.schema.metrics import OperatingPointMetrics

RULE_KINDS = ("youden", "sensitivity", "specificity", "threshold")
_VALID = "youden, sensitivity:X, specificity:X (0 < X <= 1), threshold:T (0 <= T <= 1)"
FALLBACK_THRESHOLD = 0.5  # argmax's threshold, used only when a Youden point cannot be computed


@dataclass(frozen=True)
class OperatingRule:
    """A parsed rule; `str(rule)` is its canonical text (`sensitivity:0.95`)."""

    kind: str  # one of RULE_KINDS
    value: float | None = None  # the target (sensitivity/specificity) or the fixed threshold

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"


@dataclass(frozen=True)
class ConfusionAtThreshold:
    """Counts and rates of the decision `score >= threshold`; a rate with a zero denominator is None."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: float | None
    specificity: float | None
    ppv: float | None
    npv: float | None


def parse_rule(text: str) -> OperatingRule:
    """`youden` | `sensitivity:X` | `specificity:X` | `threshold:T`; anything else is a ConfigError."""
    if not isinstance(text, str):
        raise ConfigError(f"operating point {text!r} must be text (valid: {_VALID})")
    kind, sep, raw = text.strip().lower().partition(":")
    if kind == "youden" and not sep:
        return OperatingRule("youden")
    if kind not in RULE_KINDS or kind == "youden" or not sep:
        raise ConfigError(f"operating point {text!r} is not a rule (valid: {_VALID})")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"operating point {text!r}: {raw!r} is not a number (valid: {_VALID})") from None
    low_open = kind != "threshold"
    if not math.isfinite(value) or value > 1 or value < 0 or (low_open and value == 0):
        bounds = "0 <= T <= 1" if kind == "threshold" else "0 < X <= 1"
        raise ConfigError(f"operating point {text!r}: {kind} must be in {bounds}, got {raw.strip()!r}")
    return OperatingRule(kind, value)


def at_threshold(y_positive: np.ndarray, scores: np.ndarray, threshold: float) -> ConfusionAtThreshold:
    """Confusion counts and rates of `scores >= threshold` against the boolean truth `y_positive`."""
    y, s = _check(y_positive, scores)
    called = s >= threshold
    tp, fp = int(np.sum(called & y)), int(np.sum(called & ~y))
    fn, tn = int(np.sum(~called & y)), int(np.sum(~called & ~y))
    return ConfusionAtThreshold(
        threshold=float(threshold), tp=tp, fp=fp, tn=tn, fn=fn,
        sensitivity=_rate(tp, tp + fn), specificity=_rate(tn, tn + fp),
        ppv=_rate(tp, tp + fp), npv=_rate(tn, tn + fn),
    )


def operating_point_at(rule: OperatingRule | str, y_positive: np.ndarray, scores: np.ndarray, threshold: float, *,
                       met: bool | None = None, note: str = "") -> OperatingPointMetrics:
    """The operating point `threshold` (chosen by `rule`) and what the decision `score >= threshold` gives on
    these data; `met`/`note` say whether the rule's target was reached where it was chosen (None elsewhere)."""
    c = at_threshold(y_positive, scores, threshold)
    images = c.tp + c.fp + c.tn + c.fn
    return OperatingPointMetrics(
        rule=str(rule), threshold=c.threshold, sensitivity=c.sensitivity, specificity=c.specificity,
        ppv=c.ppv, npv=c.npv, met=met, note=note, accuracy=(c.tp + c.tn) / images if images else None,
        tp=c.tp, fp=c.fp, tn=c.tn, fn=c.fn,
    )


def choose_operating_point(rule: OperatingRule | str, y_positive: np.ndarray, scores: np.ndarray) -> OperatingPointMetrics:
    """Choose the threshold for `rule` on validation data (`scores`: the positive class's probability).

    `sensitivity:X`: the highest threshold whose sensitivity >= X (the best specificity meeting X);
    `specificity:X`: the lowest threshold whose specificity >= X; `youden`: the threshold maximising
    sensitivity + specificity - 1 (the highest one on a tie); `threshold:T`: T itself.
    """
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    y, s = _check(y_positive, scores)
    if rule.kind == "threshold":
        return _point(rule, y, s, float(rule.value), met=True)
    has_pos, has_neg = bool(y.any()), bool((~y).any())
    if not (has_pos and has_neg):
        return _degenerate(rule, y, s, "positive" if not has_pos else "negative")
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    thresholds = thresholds.astype(np.float64)
    thresholds[0] = _above(s)  # roc_curve's first threshold is +inf: "no image positive"
    if rule.kind == "sensitivity":
        index = int(np.flatnonzero(tpr >= rule.value - 1e-12)[0])  # thresholds decrease along the curve
    elif rule.kind == "specificity":
        index = int(np.flatnonzero(1.0 - fpr >= rule.value - 1e-12)[-1])
    else:
        index = int(np.argmax(tpr - fpr))
    return _point(rule, y, s, float(thresholds[index]), met=True)


def _degenerate(rule: OperatingRule, y: np.ndarray, s: np.ndarray, missing: str) -> OperatingPointMetrics:
    """One class absent: apply the rule as closely as possible and say that it was not met."""
    if rule.kind == "sensitivity":
        threshold = float(s.min()) if len(s) else 0.0  # every image positive: the most sensitive choice
    elif rule.kind == "specificity":
        threshold = _above(s)  # no image positive: the most specific choice
    else:
        threshold = FALLBACK_THRESHOLD
    note = f"the data has no {missing} images, so {rule} cannot be evaluated; threshold {threshold:g} used"
    return _point(rule, y, s, threshold, met=False, note=note)


def _point(rule: OperatingRule, y: np.ndarray, s: np.ndarray, threshold: float, met: bool,
           note: str = "") -> OperatingPointMetrics:
    point = operating_point_at(rule, y, s, threshold, met=met, note=note)
    reached = {"sensitivity": point.sensitivity, "specificity": point.specificity}.get(rule.kind)
    if met and rule.value is not None and reached is not None and reached < rule.value - 1e-12:
        point = replace(point, met=False, note=(f"{rule.kind} {reached:.3f} at the highest threshold a probability "
                                                "allows (1.0): images scored exactly 1.0 are always called positive"))
    return point


def _above(scores: np.ndarray) -> float:
    """The "no image called positive" end of the curve as a threshold that is still a probability (the
    model's metadata and the device accept only 0..1): just above the highest score, at most 1.0 (a
    score of exactly 1.0 is then called positive, the one case a probability threshold cannot exclude)."""
    top = float(scores.max()) if len(scores) else 1.0
    return min(1.0, float(np.nextafter(top, np.inf)))


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _check(y_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_positive).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    return y, s
