"""Temperature scaling: probabilities a clinician can read as frequencies, at no cost in ranking.

A network trained with cross-entropy is usually over-confident. One scalar T, fitted on validation by
minimising the negative log-likelihood of softmax(logits / T) (Guo et al. 2017), fixes most of it; it
changes no argmax and no AUC, and folding it into the classifier (`medtk.train.head_folds`)
costs nothing at run time. Measured before and after on test: the top-label expected calibration
error (equal-width confidence bins) and the Brier score.

Brier score: the multi-class definition, the same for every K (Brier 1950): the mean over images of
the sum over classes of (p_k - 1[y = k])^2, in [0, 2]. For two classes it is exactly twice
scikit-learn's `brier_score_loss` on the positive class.

Logits are the `gap` layer's output, i.e. the CAM averaged over the map (`cam.mean(axis=(1, 2))`).

A temperature fitted on a small validation split can make the deployed probabilities worse (issue 22:
78 validation images fitted T = 2.51; test ECE 0.137 -> 0.197). So T ships only where held-out evidence
says it helps (`decide_temperature`): stratified K-fold on validation, T fitted on K-1 folds, NLL on the
held-out fold with and without it; kept only if the held-out NLL improves in most folds and on average
by more than its standard error, and only with at least `MIN_PER_CLASS` images of every class.
Otherwise the model ships uncalibrated (T = 1) and says why.
"""

from __future__ import annotations

import math

import numpy as np

from medtk.errors import ConfigError
from medtk.schema.metrics import Calibration, CalibrationDecision

TEMPERATURE_BOUNDS = (0.05, 20.0)
FOLDS = 5
# Every class needs this many validation images: with 5 folds a held-out fold then holds >= 6 of each, so
# one image's log-loss cannot decide a fold; with fewer, the per-fold NLL is mostly noise (and a minority
# class of 20 held by 4 images per fold is how T = 2.51 was fitted on 78 images).
MIN_PER_CLASS = 30


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy of softmax(logits / temperature) against integer labels."""
    z, y = _check(logits, labels)
    z = z / temperature
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The T in `bounds` minimising the validation NLL (bounded search over log T)."""
    from scipy.optimize import minimize_scalar

    z, y = _check(logits, labels)
    low, high = bounds
    if not (0 < low < high and math.isfinite(high)):
        raise ConfigError(f"temperature bounds {bounds!r} must satisfy 0 < low < high < inf")
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(z, y, math.exp(log_t)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(result.x))


def decide_temperature(logits: np.ndarray, labels: np.ndarray, folds: int = FOLDS,
                       min_per_class: int = MIN_PER_CLASS, seed: int = 0,
                       otherwise: str = "the model ships uncalibrated") -> CalibrationDecision:
    """Whether the temperature fitted on all of validation ships (see the module docstring); `otherwise`:
    what not applying it means, for the reason."""
    z, y = _check(logits, labels)
    fitted = fit_temperature(z, y)
    counts = np.bincount(y, minlength=z.shape[1])
    if counts.min() < min_per_class:
        return _not_applied(fitted, otherwise, f"validation has {int(counts.min())} images of its smallest class; calibration "
                                    f"needs at least {min_per_class} of every class to be checked on held-out folds")
    gains = []
    for held in _stratified_folds(y, folds, seed):
        rest = np.setdiff1d(np.arange(len(y)), held)
        t = fit_temperature(z[rest], y[rest])
        gains.append(negative_log_likelihood(z[held], y[held]) - negative_log_likelihood(z[held], y[held], t))
    gains = np.asarray(gains)
    mean, noise = float(gains.mean()), float(gains.std(ddof=1) / math.sqrt(len(gains)))
    improved = int((gains > 0).sum())
    evidence = (f"held-out NLL change {-mean:+.4f} +/- {noise:.4f} (standard error), better in {improved} of "
                f"{len(gains)} folds")
    if improved * 2 > len(gains) and mean > noise:
        return CalibrationDecision(applied=True, temperature=fitted, fitted_temperature=fitted,
                                   reason=f"temperature {fitted:.3f} applied: {evidence}")
    return _not_applied(fitted, otherwise, f"no held-out improvement beyond noise: {evidence}")


def _not_applied(fitted: float, otherwise: str, why: str) -> CalibrationDecision:
    return CalibrationDecision(applied=False, temperature=1.0, fitted_temperature=fitted,
                               reason=f"fitted temperature {fitted:.3f} not applied ({otherwise}): {why}")


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """`folds` disjoint index sets, each class spread evenly over them (seeded)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    for klass in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == klass))
        for i, index in enumerate(members):
            parts[i % folds].append(int(index))
    return [np.sort(np.asarray(part)) for part in parts]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins (lo, hi] of |B|/N * |accuracy(B) - confidence(B)|."""
    p, y = _check(probs, labels)
    if bins < 1:
        raise ConfigError(f"ECE bins must be >= 1, got {bins!r}")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.bincount(which, weights=correct - confidence, minlength=bins)  # sum of (accuracy - confidence)
    return float(np.sum(np.abs(gap[counts > 0])) / len(y))


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score (see the module docstring): 2x `brier_score_loss` for two classes."""
    p, y = _check(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def measure_calibration(logits: np.ndarray, labels: np.ndarray, temperature: float, bins: int = 15,
                        decision: CalibrationDecision | None = None) -> Calibration:
    """ECE and Brier of softmax(logits) and softmax(logits / temperature) on one split (test);
    `decision`: why that temperature (`decide_temperature`), recorded beside the numbers."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    before, after = softmax(logits), softmax(logits, temperature)
    return Calibration(
        temperature=float(temperature),
        ece_before=expected_calibration_error(before, labels, bins),
        ece_after=expected_calibration_error(after, labels, bins),
        brier_before=brier_score(before, labels),
        brier_after=brier_score(after, labels),
        applied=decision.applied if decision else temperature != 1.0,
        reason=decision.reason if decision else "",
        fitted_temperature=decision.fitted_temperature if decision else None,
    )


def _check(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if v.ndim != 2 or len(v) != len(y) or len(y) == 0:
        raise ValueError(f"expected (N, K) values and N labels with N > 0, got {v.shape} and {y.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or infinity")
    if y.min() < 0 or y.max() >= v.shape[1]:
        raise ValueError(f"labels must be in 0..{v.shape[1] - 1}, got {y.min()}..{y.max()}")
    return v, y
