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
"""

from __future__ import annotations

import math

import numpy as np

from medtk.errors import ConfigError
from medtk.schema.metrics import Calibration

TEMPERATURE_BOUNDS = (0.05, 20.0)


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


def measure_calibration(logits: np.ndarray, labels: np.ndarray, temperature: float, bins: int = 15) -> Calibration:
    """ECE and Brier of softmax(logits) and softmax(logits / temperature) on one split (test)."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    before, after = softmax(logits), softmax(logits, temperature)
    return Calibration(
        temperature=float(temperature),
        ece_before=expected_calibration_error(before, labels, bins),
        ece_after=expected_calibration_error(after, labels, bins),
        brier_before=brier_score(before, labels),
        brier_after=brier_score(after, labels),
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
