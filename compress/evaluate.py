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


def cam_agreement(reference: Outputs, candidate: Outputs) -> CamAgreement:
    classes = reference.probs.argmax(axis=1)
    rows = np.arange(len(classes))
    ref_maps = reference.cams[rows, :, :, classes] if len(classes) else reference.cams[..., 0]
    maps = candidate.cams[rows, :, :, classes] if len(classes) else candidate.cams[..., 0]
    ref_flat = ref_maps.reshape(len(classes), -1).astype(np.float64)
    flat = maps.reshape(len(classes), -1).astype(np.float64)
    rows_moved, columns_moved = _peak_offsets(ref_flat, flat, ref_maps.shape[2])
    distance = np.maximum(rows_moved, columns_moved)
    return CamAgreement(
        correlation=_mean_correlation(ref_flat, flat),
        peak_match=_fraction(distance == 0),
        peak_within_one=_fraction(distance <= 1),
        mean_peak_shift=float(np.hypot(rows_moved, columns_moved).mean()) if len(classes) else None,
    )


def _mean_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean per-image Pearson r; images where either map is constant (r undefined) are left out."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    defined = norms > 1e-12
    if not defined.any():
        return None
    return float(np.mean((a * b).sum(axis=1)[defined] / norms[defined]))


def _peak_offsets(a: np.ndarray, b: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """How many rows and columns each image's peak cell moved from `a` to `b`."""
    pa, pb = a.argmax(axis=1), b.argmax(axis=1)
    return np.abs(pa // width - pb // width), np.abs(pa % width - pb % width)


def _fraction(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None
