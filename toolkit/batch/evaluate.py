"""`medtk eval RESULTS`: how a deployed model does on an external site's labelled data, from a batch job's rows.

This is how a site validates before go-live: the model's own decision (its positive class and the
threshold sealed in the file, not one re-chosen on these data), AUC, sensitivity and specificity at that
threshold with stratified bootstrap intervals, and the calibration of the probabilities as deployed
(ECE and Brier; the temperature, if any, is already inside the model). Computed by `medtk.clinical`,
the same code as every other number medtk reports, into the same `Metrics` document (`test` = these data).

Rows with an error and rows without a ground-truth label are left out and counted (`Coverage`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medtk.errors import DataError
from medtk.schema.batch import BatchJob
from medtk.schema.metrics import Calibration, Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Coverage:
    """Which rows the numbers are about."""

    rows: int
    evaluated: int
    errors: int  # rows whose image could not be used
    unlabelled: int  # rows without a ground-truth label
    complete: bool  # the job reached the end of its source


@dataclass(frozen=True)
class ResultsEvaluation:
    metrics: Metrics
    coverage: Coverage


def evaluate_results(path: Path, seed: int = 0) -> ResultsEvaluation:
    """Metrics of the deployed model on the labelled, readable rows of the results folder `path`."""
    from medtk.batch.store import part_files, read_job

    path = Path(path)
    job = read_job(path)
    truth, probs, coverage = _labelled_rows(path, part_files(path), job)
    if not coverage.complete:
        log.warning("%s: the job did not finish (%d of %s items have rows); the numbers are about those rows only",
                    path, coverage.rows, job.expected if job.expected is not None else "?")
    return ResultsEvaluation(metrics=_metrics(job, truth, probs, f"{path} ({job.source})", seed), coverage=coverage)


def _metrics(job: BatchJob, truth: np.ndarray, probs: np.ndarray, source: str, seed: int) -> Metrics:
    from medtk.clinical import split_metrics
    from medtk.clinical.calibration import brier_score, expected_calibration_error
    from medtk.clinical.finding import Finding

    model = job.model
    finding = None
    if model.positive_class is not None and len(model.labels) == 2:
        finding = Finding(model.positive_class, model.labels.index(model.positive_class), "the model's metadata")
    split = split_metrics(truth, probs, model.labels, finding=finding, rule=model.rule if finding else None,
                          threshold=model.threshold if finding else None, intervals_seed=seed)
    ece, brier = expected_calibration_error(probs, truth), brier_score(probs, truth)
    temperature = model.temperature if model.temperature is not None else 1.0
    calibration = Calibration(
        temperature=temperature, ece_before=ece, ece_after=ece, brier_before=brier, brier_after=brier,
        applied=bool(model.calibration_applied),
        reason=f"the probabilities as deployed (temperature {temperature:.3f} inside the model)",
    )
    return Metrics(class_names=model.labels, source=source, test=replace(split, calibration=calibration))


def _labelled_rows(path: Path, parts: list[Path], job: BatchJob) -> tuple[np.ndarray, np.ndarray, Coverage]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["truth", "error", *job.model.prob_columns()]
    if not parts:
        raise DataError(f"{path}: holds no rows yet")
    table = pa.concat_tables([pq.read_table(part, columns=columns) for part in parts])
    failed = table.column("error").is_valid().to_numpy(zero_copy_only=False)
    unlabelled = table.column("truth").is_null().to_numpy(zero_copy_only=False)
    keep = ~failed & ~unlabelled
    coverage = Coverage(rows=len(table), evaluated=int(keep.sum()), errors=int(failed.sum()),
                        unlabelled=int((unlabelled & ~failed).sum()), complete=job.complete)
    if not keep.any():
        raise DataError(f"{path}: no row has both a ground-truth label and a prediction ({coverage.errors} errors, "
                        f"{coverage.unlabelled} unlabelled); evaluation needs a labelled source")
    kept = table.filter(pa.array(keep))
    names = kept.column("truth").to_pylist()
    unknown = sorted(set(names) - set(job.model.labels))
    if unknown:
        raise DataError(f"{path}: ground-truth label(s) {', '.join(map(repr, unknown[:5]))} are not classes of the "
                        f"model ({', '.join(job.model.labels)}); relabel the source to the model's class names")
    truth = np.array([job.model.labels.index(name) for name in names], dtype=np.int64)
    probs = np.stack([kept.column(c).to_numpy() for c in job.model.prob_columns()], axis=1).astype(np.float64)
    return truth, probs, coverage
