"""Clinical metrics of one split: threshold-free numbers next to the numbers at the operating point.

One function for every model the toolkit measures (the Keras float model in `eval`, each exported
variant through the runtime in `compress`), so a number means the same everywhere. For a binary task
every sensitivity, specificity, PPV and NPV is about the positive (finding) class, at the operating
point chosen on validation; multi-class tasks are decided by argmax (macro averages, no threshold).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from medtk.clinical.bootstrap import bootstrap_intervals
from medtk.clinical.calibration import measure_calibration
from medtk.clinical.classification import classification_metrics
from medtk.clinical.finding import Finding
from medtk.clinical.operating_point import choose_operating_point, operating_point_at
from medtk.schema.metrics import CalibrationDecision, SplitMetrics

log = logging.getLogger(__name__)


def split_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    *,
    finding: Finding | None,
    rule: str | None = None,
    threshold: float | None = None,
    logits: np.ndarray | None = None,
    temperature: float | None = None,
    calibration: CalibrationDecision | None = None,
    chosen_here: bool = False,
    intervals_seed: int | None = None,
) -> SplitMetrics:
    """Metrics of `probs` (N, K) against `labels` (N,).

    Binary with `finding`: sensitivity etc. at `threshold` (chosen on validation by `rule`; when
    `threshold` is None it is chosen here, on these data, which only validation may do:
    `chosen_here=True`). `logits`/`temperature`: uncalibrated logits and the fitted temperature, for
    ECE and Brier before/after; `calibration`: why that temperature (recorded with them). `intervals_seed`: add 95% stratified bootstrap intervals (test).
    """
    labels = np.asarray(labels).astype(int)
    metrics = classification_metrics(labels, probs, class_names, positive_index=finding.index if finding else None)
    if logits is not None and temperature is not None and len(labels):
        metrics = replace(metrics, calibration=measure_calibration(logits, labels, temperature,
                                                                       decision=calibration))
    if finding is None or rule is None:
        return metrics
    truth, scores = labels == finding.index, np.asarray(probs, dtype=np.float64)[:, finding.index]
    met, note = None, ""
    if threshold is None:
        if not chosen_here:
            raise ValueError("an operating point is chosen on validation data only (chosen_here=True)")
        chosen = choose_operating_point(rule, truth, scores)
        threshold, met, note = chosen.threshold, chosen.met, chosen.note
        if not chosen.met:
            log.warning("operating point %s not met on validation: %s", rule, chosen.note)
    point = operating_point_at(rule, truth, scores, threshold, met=met, note=note)
    metrics = replace(metrics, sensitivity=point.sensitivity, specificity=point.specificity, operating_point=point)
    if intervals_seed is not None and truth.any() and (~truth).any():
        metrics = replace(metrics, ci=bootstrap_intervals(truth, scores, threshold, seed=intervals_seed))
    return metrics
