"""Measure an exported `.tflite` the way a device runs it: the real interpreter via `medtk.runtime`.

CAM agreement compares each variant's class activation maps with the float32 variant's, for the class
the float32 model predicts (so both maps answer the same question): Pearson correlation per image
(averaged over images whose maps are not constant), how often the peak cell is the same cell or
within one cell (Chebyshev distance <= 1), and how far the peak moved on average (cells, Euclidean).
A correlation can stay high while every peak moves a row (benchmarks/RESULTS.md): the shift is what
says the map now points elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.schema import CamAgreement, Headline, SplitMetrics

log = logging.getLogger(__name__)
CHUNK = 64


@dataclass(frozen=True)
class Outputs:
    probs: np.ndarray  # (N, K)
    cams: np.ndarray  # (N, h, w, K)
    metrics: SplitMetrics | None = None  # what the probabilities score on their split, once measured


def run_model(path: Path, images: np.ndarray, num_threads: int | None = None) -> Outputs:
    """Probabilities and raw CAMs of the model at `path` on prepared images (N, S, S, C)."""
    from medtk.runtime import Classifier

    classifier = Classifier(path, num_threads=num_threads)
    probs, cams = [], []
    for start in range(0, len(images), CHUNK):
        p, c = classifier.predict_prepared(images[start : start + CHUNK])
        probs.append(p)
        cams.append(c)
    log.info("evaluated %s on %d images (%s)", path.name, len(images), classifier.backend)
    return Outputs(probs=np.concatenate(probs), cams=np.concatenate(cams))


def headline(metrics: SplitMetrics) -> Headline:
    """The numbers a variant is compared by: AUC, argmax accuracy, and (binary) the rates at its threshold."""
    point = metrics.operating_point
    return Headline(auc=metrics.auc, accuracy=metrics.accuracy, sensitivity=metrics.sensitivity,
                    specificity=metrics.specificity, threshold=point.threshold if point else None,
                    ppv=point.ppv if point else None, npv=point.npv if point else None)


@dataclass(frozen=True)
class CamPerImage:
    """Each image's CAM agreement with float32: what `cam_agreement` averages, and what an interval on
    that average is drawn from (accuracy control checks the CAM gate on validation with its uncertainty)."""

    correlations: np.ndarray  # Pearson r per image; NaN where either map is constant (r undefined)
    peak_shifts: np.ndarray  # distance (cells, Euclidean) of each image's peak cell from float32's
    peak_distances: np.ndarray  # ... as rows or columns moved (Chebyshev)


def cam_per_image(reference: Outputs, candidate: Outputs) -> CamPerImage:
    """Both maps for the class float32 predicts, so both answer the same question."""
    classes = reference.probs.argmax(axis=1)
    rows = np.arange(len(classes))
    ref_maps = reference.cams[rows, :, :, classes] if len(classes) else reference.cams[..., 0]
    maps = candidate.cams[rows, :, :, classes] if len(classes) else candidate.cams[..., 0]
    ref_flat = ref_maps.reshape(len(classes), -1).astype(np.float64)
    flat = maps.reshape(len(classes), -1).astype(np.float64)
    rows_moved, columns_moved = _peak_offsets(ref_flat, flat, ref_maps.shape[2])
    return CamPerImage(correlations=_correlations(ref_flat, flat), peak_shifts=np.hypot(rows_moved, columns_moved),
                       peak_distances=np.maximum(rows_moved, columns_moved))


def cam_agreement(reference: Outputs, candidate: Outputs) -> CamAgreement:
    per_image = cam_per_image(reference, candidate)
    defined = per_image.correlations[~np.isnan(per_image.correlations)]
    return CamAgreement(
        correlation=float(defined.mean()) if defined.size else None,
        peak_match=_fraction(per_image.peak_distances == 0),
        peak_within_one=_fraction(per_image.peak_distances <= 1),
        mean_peak_shift=float(per_image.peak_shifts.mean()) if per_image.peak_shifts.size else None,
    )


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image Pearson r; NaN where either map is constant (r undefined: left out of every mean)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    defined = norms > 1e-12
    r = np.full(len(a), np.nan)
    r[defined] = (a * b).sum(axis=1)[defined] / norms[defined]
    return r


def _peak_offsets(a: np.ndarray, b: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """How many rows and columns each image's peak cell moved from `a` to `b`."""
    pa, pb = a.argmax(axis=1), b.argmax(axis=1)
    return np.abs(pa // width - pb // width), np.abs(pa % width - pb % width)


def _fraction(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None
