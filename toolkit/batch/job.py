"""`run_batch`: one model over a whole source, rows into a resumable results folder (docs/ARCHITECTURE.md, "Archive-scale batch inference").

Everything the user can get wrong (options, model, source, an output folder of another job) is checked
before the first part is written; after that a bad image is a row with its error, never a stop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from medtk.errors import ConfigError, MissingExtraError

log = logging.getLogger(__name__)

DEFAULT_ROWS_PER_PART = 1000
MAX_RAY_WORKERS = 4096


@dataclass(frozen=True)
class BatchOptions:
    """`workers`: interpreters side by side (default: the usable CPUs); `ray`: None for the local pool,
    "local" for a private local Ray cluster, else a cluster address; `rows_per_part`: rows per Parquet
    part, i.e. the most work a kill can lose."""

    workers: int | None = None
    ray: str | None = None
    rows_per_part: int = DEFAULT_ROWS_PER_PART
    trusted_keys: tuple[Path, ...] | None = None


@dataclass(frozen=True)
class BatchSummary:
    out: Path
    executor: str  # "local pool" or "ray (ADDRESS)"
    workers: int
    rows: int  # in the folder now (every item of the source once the job is complete)
    already_done: int  # rows found in the folder when the job started (resumed)
    written: int  # rows this run added
    errors: int  # rows with an error, in the whole folder
    duplicates: int  # rows an executor handed back twice (dropped: each item is in the folder once)


def run_batch(model: Path, src: str, out: Path, options: BatchOptions = BatchOptions()) -> BatchSummary:
    """Predict every item of `src` with `model` into the results folder `out` (resuming what it holds)."""
    from medtk.batch.items import open_items
    from medtk.data.sources import resolve_source
    from medtk.runtime import Classifier
    from medtk.schema.batch import BatchJob, ModelInfo

    workers = _check(options)
    src = resolve_source(src)  # absolute: a rerun from another folder resumes the same job
    classifier = Classifier(model, num_threads=1, trusted_keys=options.trusted_keys)
    info = ModelInfo.of(classifier)
    source = open_items(src, info.labels, (classifier.input_size, classifier.channels,
                                           classifier.metadata.input.interpolation))
    log.info("batch: %s items from %s", source.count if source.count is not None else "?", source.description)
    job = BatchJob(model=info, model_path=str(Path(model).resolve()), source=src, labelled=source.labelled,
                   expected=source.count)
    if options.ray is not None:
        from medtk.batch.on_ray import connect, disconnect

        connect(options.ray, workers)
        try:
            return _run(classifier, info, source, job, Path(out), options, workers)
        finally:
            disconnect()
    return _run(classifier, info, source, job, Path(out), options, workers)


def _run(classifier, info, source, job, out: Path, options: BatchOptions, workers: int) -> BatchSummary:
    from medtk.batch.store import ResultsStore
    from medtk.progress import track

    store = ResultsStore(out, job)
    already = len(store.done)
    pending = (item for item in source if item.source_id not in store.done)
    if options.ray is None:
        from medtk.batch.local import local_rows

        rows, executor = local_rows(classifier, pending, info, workers), "local pool"
    else:
        from medtk.batch.on_ray import ray_rows

        # read again for the object store: each actor checks it is the file verified here (its sha256)
        rows, executor = ray_rows(Path(job.model_path).read_bytes(), pending, info, workers), f"ray ({options.ray})"
    remaining = None if source.count is None else max(source.count - already, 0)
    written, part = 0, []
    for row in track(rows, remaining, "predicting"):
        part.append(row)
        if len(part) >= options.rows_per_part:
            written += store.write(part)
            part = []
    written += store.write(part)
    if store.duplicates:
        log.warning("batch: %d rows handed back twice by the executor were dropped (each item is written once)",
                    store.duplicates)
    finished = store.finish()
    return BatchSummary(out=Path(out), executor=executor, workers=workers, rows=finished.rows or 0,
                        already_done=already, written=written, errors=store.errors, duplicates=store.duplicates)


def _check(options: BatchOptions) -> int:
    """The worker count, once every option and the extras they need are known to be usable."""
    from medtk.runtime.backend import resolve_threads

    if not isinstance(options.rows_per_part, int) or options.rows_per_part < 1:
        raise ConfigError(f"--rows-per-part {options.rows_per_part!r}: must be a whole number of at least 1")
    _require("pyarrow", "writing Parquet results")
    if options.ray is None or options.ray == "local":
        workers = resolve_threads(options.workers, option="--workers")
    else:
        workers = options.workers or 1
        if not 1 <= workers <= MAX_RAY_WORKERS:
            raise ConfigError(f"--workers {workers}: give 1..{MAX_RAY_WORKERS} Ray actors")
    if options.ray is not None:
        if not options.ray.strip():
            raise ConfigError("--ray '': give 'local' (a private local cluster) or a cluster address, e.g. auto or HOST:6379")
        _require("ray", "--ray")
        if options.ray != "local":
            from medtk.batch.on_ray import check_reachable

            check_reachable(options.ray)
    return workers


def _require(module: str, purpose: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"{purpose} needs the scale extra: pip install 'medtk[scale]'")
