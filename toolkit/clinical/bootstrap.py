"""95% confidence intervals for AUC and the operating point's rates: a test set of 624 images is small.

Stratified percentile bootstrap: each resample draws the positives and the negatives separately, with
replacement, keeping both counts, so every resample has both classes and AUC, sensitivity and
specificity are always defined. Seeded, hence reproducible. Vectorised: a resample is a vector of
counts (how often each image was drawn), AUC comes from the negatives' cumulative counts at each
positive's rank (the Mann-Whitney statistic with ties counted one half, as `roc_auc_score`), and
resamples are processed in chunks so memory stays bounded for large test sets.

PPV and NPV can be undefined in a resample (no image called positive / negative); their interval is
taken over the resamples where they are defined, and is None when they never are.
"""

from __future__ import annotations

import numpy as np

from medtk.errors import ConfigError
from medtk.schema.metrics import BootstrapIntervals, Interval

MIN_RESAMPLES = 1000
_CHUNK_ELEMENTS = 4_000_000  # resamples x images per chunk: about 32 MB of float64 per array


def bootstrap_intervals(
    y_positive: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapIntervals:
    """Stratified bootstrap intervals for AUC and, with a threshold, sensitivity/specificity/PPV/NPV."""
    if not isinstance(resamples, int) or resamples < MIN_RESAMPLES:
        raise ConfigError(f"bootstrap resamples must be an integer >= {MIN_RESAMPLES}, got {resamples!r}")
    if not 0 < level < 1:
        raise ConfigError(f"bootstrap level must be in (0, 1), got {level!r}")
    y = np.asarray(y_positive).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape or not np.isfinite(s).all():
        raise ValueError(f"expected as many finite scores as labels, got {s.shape} and {y.shape}")
    positives, negatives = np.sort(s[y]), np.sort(s[~y])
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, len(s)))
    parts = [
        _resample_chunk(rng, positives, negatives, min(chunk, resamples - start), threshold)
        for start in range(0, resamples, chunk)
    ]
    values = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    tail = 100 * (1 - level) / 2
    intervals = {name: _percentiles(v, tail) for name, v in values.items()}
    return BootstrapIntervals(
        auc=intervals["auc"],
        sensitivity=intervals.get("sensitivity"),
        specificity=intervals.get("specificity"),
        ppv=intervals.get("ppv"),
        npv=intervals.get("npv"),
        threshold=None if threshold is None else float(threshold),
        level=level,
        resamples=resamples,
        seed=seed,
    )


def paired_auc_drop(
    y_positive: np.ndarray, reference: np.ndarray, candidate: np.ndarray, resamples: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> tuple[float, Interval]:
    """AUC(reference) - AUC(candidate) on the same images, with its stratified bootstrap interval.

    Paired: every resample draws the same images for both scorers, so what the two share (which images
    are hard) cancels and the interval is about the difference alone. Used where a decision must hold
    beyond the luck of one split (accuracy control's validation margin), not only at the point estimate.
    """
    if not isinstance(resamples, int) or resamples < MIN_RESAMPLES:
        raise ConfigError(f"bootstrap resamples must be an integer >= {MIN_RESAMPLES}, got {resamples!r}")
    y = np.asarray(y_positive).astype(bool).ravel()
    a = np.asarray(reference, dtype=np.float64).ravel()
    b = np.asarray(candidate, dtype=np.float64).ravel()
    if not (y.shape == a.shape == b.shape) or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"expected as many finite scores as labels, got {a.shape}, {b.shape} and {y.shape}")
    if y.all() or not y.any():
        raise ValueError("the AUC difference needs both classes")
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // len(y))
    drops = []
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        w_pos, w_neg = _draw_counts(rng, int(y.sum()), count), _draw_counts(rng, int((~y).sum()), count)
        drops.append(_weighted_auc(a[y], a[~y], w_pos, w_neg) - _weighted_auc(b[y], b[~y], w_pos, w_neg))
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(np.concatenate(drops), [tail, 100 - tail])
    return rank_auc(y, a) - rank_auc(y, b), (float(lo), float(hi))


def _weighted_auc(positives: np.ndarray, negatives: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """AUC per resample; `w_pos` (count, n_pos) and `w_neg` (count, n_neg) weight the images in their given order."""
    order = np.argsort(negatives, kind="stable")
    negatives, w_neg = negatives[order], w_neg[:, order]
    cumulative = np.zeros((len(w_neg), len(negatives) + 1))
    np.cumsum(w_neg, axis=1, out=cumulative[:, 1:])
    left = np.searchsorted(negatives, positives, side="left")
    right = np.searchsorted(negatives, positives, side="right")
    wins = cumulative[:, left] + 0.5 * (cumulative[:, right] - cumulative[:, left])
    return np.sum(w_pos * wins, axis=1) / (len(positives) * len(negatives))


def rank_auc(y_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC by ranks (ties count one half); equals `sklearn.metrics.roc_auc_score`. None with one class."""
    y = np.asarray(y_positive).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    positives, negatives = s[y], np.sort(s[~y])
    if len(positives) == 0 or len(negatives) == 0:
        return None
    below = np.searchsorted(negatives, positives, side="left")
    equal = np.searchsorted(negatives, positives, side="right") - below
    return float(np.sum(below + 0.5 * equal) / (len(positives) * len(negatives)))


def _resample_chunk(rng: np.random.Generator, positives: np.ndarray, negatives: np.ndarray, count: int,
                    threshold: float | None) -> dict[str, np.ndarray]:
    """Metric values of `count` resamples; positives and negatives are each sorted ascending."""
    n_pos, n_neg = len(positives), len(negatives)
    w_pos = _draw_counts(rng, n_pos, count)  # (count, n_pos): how often each positive was drawn
    w_neg = _draw_counts(rng, n_neg, count)
    out: dict[str, np.ndarray] = {}
    if n_pos and n_neg:
        cumulative = np.zeros((count, n_neg + 1))
        np.cumsum(w_neg, axis=1, out=cumulative[:, 1:])
        left = np.searchsorted(negatives, positives, side="left")
        right = np.searchsorted(negatives, positives, side="right")
        wins = cumulative[:, left] + 0.5 * (cumulative[:, right] - cumulative[:, left])  # (count, n_pos)
        out["auc"] = np.sum(w_pos * wins, axis=1) / (n_pos * n_neg)
    else:
        out["auc"] = np.full(count, np.nan)
    if threshold is not None:
        tp = w_pos @ (positives >= threshold).astype(np.float64)
        tn = w_neg @ (negatives < threshold).astype(np.float64)
        fn, fp = n_pos - tp, n_neg - tn
        with np.errstate(divide="ignore", invalid="ignore"):
            out["sensitivity"] = tp / n_pos if n_pos else np.full(count, np.nan)
            out["specificity"] = tn / n_neg if n_neg else np.full(count, np.nan)
            out["ppv"] = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            out["npv"] = np.where(tn + fn > 0, tn / (tn + fn), np.nan)
    return out


def _draw_counts(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """(count, n) draw counts of `count` resamples of size n with replacement."""
    if n == 0:
        return np.zeros((count, 0))
    drawn = rng.integers(0, n, size=(count, n)) + n * np.arange(count)[:, None]
    return np.bincount(drawn.ravel(), minlength=count * n).reshape(count, n).astype(np.float64)


def _percentiles(values: np.ndarray, tail: float) -> Interval | None:
    defined = values[np.isfinite(values)]
    if len(defined) == 0:
        return None
    lo, hi = np.percentile(defined, [tail, 100 - tail])
    return float(lo), float(hi)
