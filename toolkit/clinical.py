"""Clinical metrics of one split: threshold-free numbers next to the numbers at the operating point.

One function for every model the toolkit measures (the Keras float model in `eval`, each exported
variant through the runtime in `compress`), so a number means the same everywhere. For a binary task
every sensitivity, specificity, PPV and NPV is about the positive (finding) class, at the operating
point chosen on validation; multi-class tasks are decided by argmax (macro averages, no threshold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from medtk.errors import ConfigError
from medtk.schema.metrics import OperatingPointMetrics, SplitMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """The positive class of a binary task, and where that choice came from (shown to the user)."""

    name: str
    index: int
    origin: str  # "--positive-class", "the data source's catalogue" or "the last class"


def resolve_finding(requested: str, class_names: tuple[str, ...] | list[str], catalogued: str | None) -> Finding | None:
    """The finding class of a binary task (None for more classes); a name not among the classes is refused."""
    names = [str(name) for name in class_names]
    if len(names) != 2:
        if requested:
            raise ConfigError(f"--positive-class {requested!r}: only binary tasks have one; this task has "
                              f"{len(names)} classes ({', '.join(names)}) and is decided by argmax")
        return None
    if requested:
        if requested not in names:
            raise ConfigError(f"--positive-class {requested!r} is not a class of this data; expected one of "
                              f"{', '.join(repr(n) for n in names)}")
        return Finding(requested, names.index(requested), "--positive-class")
    if catalogued in names:
        return Finding(catalogued, names.index(catalogued), "the data source's catalogue")
    return Finding(names[1], 1, "the last class")


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
    chosen_here: bool = False,
    intervals_seed: int | None = None,
) -> SplitMetrics:
    """Metrics of `probs` (N, K) against `labels` (N,).

    Binary with `finding`: sensitivity etc. at `threshold` (chosen on validation by `rule`; when
    `threshold` is None it is chosen here, on these data, which only validation may do:
    `chosen_here=True`). `logits`/`temperature`: uncalibrated logits and the fitted temperature, for
    ECE and Brier before/after. `intervals_seed`: add 95% stratified bootstrap intervals (test).
    """
    from medtk.bootstrap import bootstrap_intervals
    from medtk.calibration import measure_calibration
    from medtk.metrics import classification_metrics
    from medtk.operating_point import at_threshold, choose_operating_point

    labels = np.asarray(labels).astype(int)
    metrics = classification_metrics(labels, probs, class_names, positive_index=finding.index if finding else None)
    if logits is not None and temperature is not None and len(labels):
        metrics = replace(metrics, calibration=measure_calibration(logits, labels, temperature))
    if finding is None or rule is None:
        return metrics
    truth, scores = labels == finding.index, np.asarray(probs, dtype=np.float64)[:, finding.index]
    met, note = None, ""
    if threshold is None:
        if not chosen_here:
            raise ValueError("an operating point is chosen on validation data only (chosen_here=True)")
        point = choose_operating_point(rule, truth, scores)
        threshold, met, note = point.threshold, point.met, point.note
        if not point.met:
            log.warning("operating point %s not met on validation: %s", rule, point.note)
    rates = at_threshold(truth, scores, threshold)
    decided = (scores >= threshold) == truth
    metrics = replace(
        metrics,
        sensitivity=rates.sensitivity,
        specificity=rates.specificity,
        operating_point=OperatingPointMetrics(
            rule=rule, threshold=float(threshold), sensitivity=rates.sensitivity, specificity=rates.specificity,
            ppv=rates.ppv, npv=rates.npv, met=met, note=note, accuracy=float(decided.mean()) if len(labels) else None,
            tp=rates.tp, fp=rates.fp, tn=rates.tn, fn=rates.fn,
        ),
    )
    if intervals_seed is not None and truth.any() and (~truth).any():
        metrics = replace(metrics, ci=bootstrap_intervals(truth, scores, threshold, seed=intervals_seed))
    return metrics
