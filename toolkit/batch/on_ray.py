"""The job on Ray Data: the same rows as the local pool, from an actor pool on a local or existing cluster.

`map_batches` with `ActorPoolStrategy(size=workers)`: each actor holds one single-threaded `Classifier`
for its life. The model's bytes go into the object store once (`ray.put`); each actor writes them to a
private temporary file and loads them through `Classifier`, which verifies the seal before the
interpreter sees them, then checks that the sha256 of what it verified is the driver's. Actors call the
same `predict_row` as the local pool, so a row cannot differ by executor.

What travels: the pending items' ids, labels and file paths, or for a prepared dataset each record's
shard and byte offset (files and shards are read by the actors, so on a cluster of several machines the
source must be on storage they all mount at the same path), or, for in-memory sources (an `.npz`), their
arrays. Ray's streaming executor applies back-pressure, so decoded
images exist only inside the actors; the driver holds the pending item list (not images) in the object
store. A failed actor is restarted by Ray and its batch retried; the results store drops a row it has
already committed, so every item is in the output exactly once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from medtk.batch.items import Item, PreparedRecord
from medtk.errors import ConfigError, MedtkError, MissingExtraError, ModelError
from medtk.schema.batch import ModelInfo

log = logging.getLogger(__name__)

LOCAL = "local"
BATCH_SIZE = 16  # images per actor call: small, so work spreads evenly over the actors


def ray_rows(model_bytes: bytes, items: Iterable[Item], model: ModelInfo, workers: int) -> Iterator[dict[str, Any]]:
    """Rows of `items` from `workers` Ray actors, on the cluster `connect` joined."""
    import ray
    from ray.data import ActorPoolStrategy

    records = [_record(item) for item in items]
    if not records:
        return
    _same_columns(records)
    dataset = ray.data.from_items(records).map_batches(
        _Predictor,
        fn_constructor_kwargs={"model": [ray.put(model_bytes)], "info": model},
        compute=ActorPoolStrategy(size=workers),
        batch_size=BATCH_SIZE,
        batch_format="numpy",
        num_cpus=1,
    )
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield from batch.to_pylist()
    except ray.exceptions.RayError as error:  # the rows committed so far stay; a rerun resumes after them
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MedtkError(f"--ray: the job failed on the cluster ({type(error).__name__}: {first}); rerun to resume "
                         "(--debug shows Ray's traceback)") from error


def connect(address: str, workers: int) -> None:
    """Start a private local cluster of `workers` CPUs ("local") or join the one at `address`; before the job
    creates anything, so an unreachable cluster leaves no results folder behind."""
    try:
        import ray
        from ray.data import DataContext
    except ImportError:
        raise MissingExtraError("--ray needs Ray Data: pip install 'medtk[scale]'") from None
    if address == LOCAL:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    else:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster there ({error})") from None
    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # the parts hold rows in the source's order
    context.enable_progress_bars = False


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on is a one-line error now, not the minutes Ray waits for it."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" or a ray:// URL: Ray's own resolution
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConfigError(f"--ray {address}: nothing answers there ({error.strerror or error}); is the cluster's "
                          "head started (ray start --head)?") from None


def disconnect() -> None:
    """Leave the cluster (a private local one stops with it)."""
    import ray

    ray.shutdown()


def _record(item: Item) -> dict[str, Any]:
    """A row of the input dataset. Only the keys with a value: a column of nothing but None would reach the
    actors as floats (NaN); a source's items are all paths or all arrays, all labelled or none (checked)."""
    record: dict[str, Any] = {"source_id": item.source_id}
    if isinstance(item.image, PreparedRecord):  # the actor reads the record: no pixels through the driver
        record.update(shard=str(item.image.shard), offset=item.image.offset)
    else:
        image = item.load()
        record.update({"path": str(image)} if isinstance(image, Path) else {"pixels": np.asarray(image)})
    if item.truth is not None:
        record["truth"] = item.truth
    return record


def _same_columns(records: list[dict[str, Any]]) -> None:
    columns = {frozenset(record) for record in records}
    if len(columns) > 1:
        raise ConfigError(f"--ray: the source mixes items of different kinds ({sorted(map(sorted, columns))}); "
                          "give one kind (files or arrays, labelled or not) per job")


class _Predictor:
    """One Ray actor: one verified single-threaded `Classifier`, rows for each batch it is handed."""

    def __init__(self, model: list, info: ModelInfo) -> None:
        import tempfile

        import ray

        from medtk.batch.local import single_threaded_blas
        from medtk.runtime import Classifier

        self._blas = single_threaded_blas()  # the actor's process is the job's: one BLAS thread for its life
        self.info = info
        self._folder = tempfile.TemporaryDirectory(prefix="medtk-ray-")
        path = Path(self._folder.name) / "model.tflite"
        path.write_bytes(ray.get(model[0]))
        self.classifier = Classifier(path, num_threads=1)  # verifies the seal before the interpreter sees it
        if self.classifier.file_sha256 != info.sha256:
            raise ModelError(f"Ray worker: the model it received has sha256 {self.classifier.file_sha256[:12]}..., "
                             f"the job's is {info.sha256[:12]}...")

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        from medtk.batch.rows import arrow_schema, predict_row

        count = len(batch["source_id"])
        if "shard" in batch:
            images = [PreparedRecord(Path(str(s)), int(o)) for s, o in zip(batch["shard"], batch["offset"])]
        elif "path" in batch:
            images = [Path(str(p)) for p in batch["path"]]
        else:
            images = [np.asarray(p) for p in batch["pixels"]]
        truths = [str(t) for t in batch["truth"]] if "truth" in batch else [None] * count
        rows = [predict_row(self.classifier, Item(str(source_id), image, truth), self.info)
                for source_id, image, truth in zip(batch["source_id"], images, truths)]
        return pa.Table.from_pylist(rows, schema=arrow_schema(self.info))
