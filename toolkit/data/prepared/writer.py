"""`prepare_dataset`: decode every image once through the device's preprocessing into TFRecord shards.

Bounded memory: one shard at a time is decoded (a bounded thread pool; OpenCV and pydicom release the
GIL) and streamed to its file, never a whole split. Resumable: each shard is written to a temporary
file, fsynced and renamed, and only then recorded in manifest.json (itself replaced atomically), so a
kill -9 at any moment leaves complete shards the manifest lists, and perhaps a temporary file a rerun
deletes. A rerun reuses the listed shards whose bytes still match their sha256, and refuses (naming
what changed) when the source, its split or the preprocessing differ from what the manifest says.
An image that cannot be decoded is recorded in the manifest with its reason and left out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from medtk.data.base import Dataset
from medtk.data.prepared.example import PreparedItem, encode
from medtk.data.prepared.manifest import (INDEX_COLUMNS, MANIFEST, Layout, Manifest, PixelStats, Preprocessing,
                                          ShardRecord, SkippedItem, SourceRecord, file_sha256, index_name,
                                          shard_name, source_digest, summarise)
from medtk.data.prepared.tfrecord import write_record
from medtk.data.staging import DecodedStage
from medtk.errors import ConfigError, DataError, ImageDecodeError
from medtk.io import atomic_write_json, atomic_write_text, fsync_dir
from medtk.progress import counter

log = logging.getLogger(__name__)

SHARD_BYTES = 128 * 1024 * 1024  # about 850 images at 224x224x3: big enough for sequential reads
DEFAULT_THREADS = 4
LOCK = ".lock"


@dataclass(frozen=True)
class PrepareResult:
    manifest: Manifest
    shards_written: int
    shards_reused: int


@dataclass(frozen=True)
class _Plan:
    """Which items go to which shard, in which order."""

    order: dict[str, np.ndarray]  # split -> indices into the split, in write order
    layout: Layout

    def shard_items(self, split: str, index: int) -> np.ndarray:
        size = self.layout.items_per_shard
        return self.order[split][index * size:(index + 1) * size]


def check_options(input_size: int, channels: int, shard_bytes: int, threads: int | None) -> None:
    """Every option checked before anything is read or created."""
    if not 16 <= input_size <= 1024:
        raise ConfigError(f"--input-size {input_size} is out of range (16 to 1024)")
    if channels not in (1, 3):
        raise ConfigError(f"--channels {channels} is not 1 or 3")
    if shard_bytes < 1:
        raise ConfigError(f"shard size {shard_bytes} bytes must be positive")
    if threads is not None and not 1 <= threads <= 64:
        raise ConfigError(f"--threads {threads} is out of range (1 to 64)")


def check_destination(out: Path, overwrite: bool) -> None:
    """`out` must be new, empty, or a prepared dataset (to resume, or to replace with `overwrite`)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(p.name != LOCK for p in out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"--out {out}: folder is not empty and holds no prepared dataset ({MANIFEST}); "
                          "choose a new folder")


def prepare_dataset(dataset: Dataset, out: Path, input_size: int, channels: int, *, seed: int = 0,
                    shard_bytes: int = SHARD_BYTES, threads: int | None = None, overwrite: bool = False,
                    decoded: DecodedStage | None = None) -> PrepareResult:
    """Write (or finish) the prepared dataset of `dataset` in `out`; returns its manifest. `decoded`: the
    images the source check already decoded, read instead of decoding again."""
    from medtk import __version__
    from medtk.runtime.imaging import INTERPOLATION_RULE
    from medtk.runtime.intensity import FULL_RANGE

    out = Path(out)
    check_options(input_size, channels, shard_bytes, threads)
    check_destination(out, overwrite)
    plan = _plan(dataset, input_size * input_size * channels, shard_bytes, seed)
    manifest = Manifest(
        complete=False,
        class_names=tuple(dataset.class_names),
        preprocessing=Preprocessing(input_size=input_size, channels=channels, intensity_mapping=FULL_RANGE,
                                    interpolation=INTERPOLATION_RULE),
        layout=plan.layout,
        source=SourceRecord(src=dataset.source, split_origin=dataset.split_origin, digest=_digest(dataset, plan),
                            items={name: len(order) for name, order in plan.order.items()}),
        medtk_version=__version__,
        finding=dataset.finding,
        intensity=dataset.intensity.to_dict() if dataset.intensity is not None else None,
        skipped=tuple(SkippedItem(item=s.item, reason=s.reason) for s in dataset.skipped),
    )
    out.mkdir(parents=True, exist_ok=True)
    with _only_writer(out):
        return _prepare(dataset, out, plan, manifest, input_size, channels, threads, overwrite, decoded)


def _prepare(dataset: Dataset, out: Path, plan: _Plan, manifest: Manifest, input_size: int, channels: int,
             threads: int | None, overwrite: bool, decoded: DecodedStage | None) -> PrepareResult:
    def sources_now(shard: ShardRecord) -> str | None:
        return _sources_sha256(dataset, plan, shard.split, shard.index)

    manifest = _resume_from(out, manifest, overwrite, sources_now)
    for stale in out.glob(".*.tmp"):  # a shard interrupted mid-write
        stale.unlink()
    manifest = _save(out, manifest)
    done = {(s.split, s.index) for s in manifest.shards}
    todo = [(split, index) for split, count in plan.layout.shards.items() for index in range(count)
            if (split, index) not in done]
    remaining = sum(len(plan.shard_items(split, index)) for split, index in todo)
    reused = len(done)
    if reused:
        log.info("%s: %d shards already done, %d to write", out, reused, len(todo))
    with ThreadPoolExecutor(max_workers=threads or min(DEFAULT_THREADS, os.cpu_count() or 1)) as pool, \
            counter(f"preparing {remaining} images at {input_size} px", remaining, " images") as advance:
        for split, index in todo:
            try:
                shard = _write_shard(out, dataset, plan, split, index, input_size, channels, pool, advance, decoded)
            except OSError as error:  # a full disk: the shards listed so far stay, a rerun continues after them
                name = shard_name(split, index, plan.layout.shards[split])
                raise DataError(f"{out / name}: cannot write ({error.strerror or error}); the {len(manifest.shards)} "
                                "shards written before it are kept: rerun the same command to continue") from None
            manifest = _save(out, _with_shard(manifest, shard))
    manifest = _save(out, replace(manifest, complete=True))
    return PrepareResult(manifest=manifest, shards_written=len(todo), shards_reused=reused)


@contextmanager
def _only_writer(out: Path) -> Iterator[None]:
    """One writer per folder: a second `prepare` (or `train` preparing into its run) on the same `out` would
    interleave shards and manifests. An advisory lock on `out/.lock`, released when the process ends, even
    by kill -9."""
    import fcntl

    with open(out / LOCK, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{out}: another process is preparing this dataset now; wait for it, or choose "
                            "another --out") from None
        yield


def _plan(dataset: Dataset, image_bytes: int, shard_bytes: int, seed: int) -> _Plan:
    per_shard = max(1, shard_bytes // image_bytes)
    order, shards = {}, {}
    for name, split in dataset.splits.items():
        indices = np.arange(len(split))
        if name == "train":  # shards of random samples: interleaving a few of them mixes the classes
            indices = np.random.default_rng(seed).permutation(len(split))
        order[name] = indices
        shards[name] = -(-len(split) // per_shard)
    return _Plan(order=order, layout=Layout(items_per_shard=per_shard, shuffle_seed=seed, shards=shards))


def _digest(dataset: Dataset, plan: _Plan) -> str:
    def rows():
        for name, indices in plan.order.items():
            split = dataset.splits[name]
            for i in indices:
                yield name, split.ids[i], int(split.labels[i]), _group(split, int(i))

    return source_digest(dataset.class_names, rows())


def _group(split, index: int) -> str:
    return split.patient_ids[index] if split.patient_ids is not None else ""


def _resume_from(out: Path, fresh: Manifest, overwrite: bool,
                 sources_now: Callable[[ShardRecord], str | None]) -> Manifest:
    """The manifest to continue: the fresh one, or the one on disk with its intact shards kept (intact: its
    bytes match the manifest and so do its source files, `sources_now(shard)`)."""
    path = out / MANIFEST
    if not path.is_file():
        return fresh
    if overwrite:
        _remove_dataset(out)
        return fresh
    try:
        old = Manifest.from_json(json.loads(path.read_text(encoding="utf-8")), path)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: unreadable ({error}); pass --overwrite to prepare the dataset again") from None
    changed = _difference(old, fresh)
    if changed:
        raise DataError(f"{out}: {changed} since this dataset was prepared; pass --overwrite to prepare it again "
                        "or choose a new --out")
    intact = tuple(shard for shard in old.shards if _intact(out, shard) and _same_sources(out, shard, sources_now))
    return replace(fresh, shards=intact, skipped=fresh.skipped + tuple(s for shard in intact for s in shard.skipped),
                   complete=False)


def _difference(old: Manifest, new: Manifest) -> str | None:
    """What changed between the manifest on disk and this run, in words (None: the same)."""
    if old.preprocessing != new.preprocessing:
        before, after = old.preprocessing, new.preprocessing
        keys = [k for k in ("input_size", "channels", "intensity_mapping", "interpolation", "function")
                if getattr(before, k) != getattr(after, k)]
        return "the preprocessing changed (" + ", ".join(
            f"{k} {getattr(before, k)!r} -> {getattr(after, k)!r}" for k in keys) + ")"
    if tuple(old.class_names) != tuple(new.class_names):
        return f"the classes changed ({', '.join(old.class_names)} -> {', '.join(new.class_names)})"
    if old.source.digest != new.source.digest:
        items = ", ".join(f"{k} {old.source.items.get(k, 0)} -> {new.source.items.get(k, 0)}" for k in new.source.items)
        return f"the source changed (its items, labels or split differ; items per split: {items})"
    if old.layout != new.layout:
        return "the shard layout changed (shard size or shuffle seed)"
    return None


def _intact(out: Path, shard: ShardRecord) -> bool:
    path, index = out / shard.file, out / shard.index_file
    if (not path.is_file() or path.stat().st_size != shard.bytes or file_sha256(path) != shard.sha256
            or not index.is_file() or file_sha256(index) != shard.index_sha256):
        log.warning("%s: missing or altered since it was written; writing it again", path)
        return False
    return True


def _same_sources(out: Path, shard: ShardRecord, sources_now: Callable[[ShardRecord], str | None]) -> bool:
    if shard.sources_sha256 is None or sources_now(shard) == shard.sources_sha256:
        return True
    log.warning("%s: a source file of its images changed since it was written (size or modification time); "
                "writing it again", out / shard.file)
    return False


def _sources_sha256(dataset: Dataset, plan: _Plan, split_name: str, index: int) -> str | None:
    """sha256 over (id, size, modification time) of the shard's source files; None for in-memory sources."""
    split = dataset.splits[split_name]
    if split.files is None:
        return None
    digest = hashlib.sha256()
    for i in plan.shard_items(split_name, index):
        try:
            status = os.stat(split.files[int(i)])
            stamp = [status.st_size, status.st_mtime_ns]
        except OSError:
            stamp = None
        digest.update(json.dumps([split.ids[int(i)], stamp], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _remove_dataset(out: Path) -> None:
    """--overwrite: delete what a prepared dataset consists of, nothing else."""
    for path in [out / MANIFEST, *out.glob("*.tfrecord"), *out.glob("*.index.csv"), *out.glob(".*.tmp")]:
        path.unlink()
    log.info("%s: removed the previous prepared dataset (--overwrite)", out)


def _write_shard(out: Path, dataset: Dataset, plan: _Plan, split_name: str, index: int, size: int, channels: int,
                 pool: ThreadPoolExecutor, advance, decoded: DecodedStage | None) -> ShardRecord:
    from medtk.runtime.imaging import prepare_input

    split = dataset.splits[split_name]
    items = plan.shard_items(split_name, index)
    name = shard_name(split_name, index, plan.layout.shards[split_name])
    sources = _sources_sha256(dataset, plan, split_name, index)  # the files as this shard is written

    def work(i: int) -> PreparedItem | SkippedItem:
        i = int(i)
        pixels = decoded.pixels(split.ids[i], size, channels) if decoded is not None else None
        try:
            if pixels is None:
                pixels = prepare_input(split.load(i), size, channels)
        except (ImageDecodeError, OSError) as error:
            return SkippedItem(item=split.ids[i], reason=_reason(error, split.ids[i]), split=split_name)
        return PreparedItem(source_id=split.ids[i], image=pixels, label=int(split.labels[i]), group=_group(split, i))

    temporary = out / f".{name}.tmp"
    digest, written, skipped, rows = hashlib.sha256(), 0, [], []
    classes = [0] * len(dataset.class_names)
    count = total = squares = 0
    try:
        with open(temporary, "wb") as stream:
            hashed = _HashingWriter(stream, digest)
            for result in pool.map(work, items):
                advance(1)
                if isinstance(result, SkippedItem):
                    log.warning("skipped %s: %s", result.item, result.reason)
                    skipped.append(result)
                    continue
                rows.append((hashed.position, result.label, result.source_id, result.group))
                write_record(hashed, encode(result))
                written += 1
                classes[result.label] += 1
                values = result.image.astype(np.int64)
                count, total, squares = count + values.size, total + int(values.sum()), squares + int((values * values).sum())
            stream.flush()
            os.fsync(stream.fileno())
            size_on_disk = stream.tell()
        index_text = _index_csv(rows)
        atomic_write_text(out / index_name(name), index_text)  # before the shard: a listed shard has its index
        os.replace(temporary, out / name)
        fsync_dir(out)
    except OSError:
        temporary.unlink(missing_ok=True)  # what a full disk let through: freed at once
        raise
    return ShardRecord(split=split_name, index=index, file=name, records=written, bytes=size_on_disk,
                       sha256=digest.hexdigest(), class_counts=tuple(classes),
                       pixels=PixelStats(count=count, total=total, squares=squares), index_file=index_name(name),
                       index_sha256=hashlib.sha256(index_text.encode("utf-8")).hexdigest(), skipped=tuple(skipped),
                       sources_sha256=sources)


def _index_csv(rows: list[tuple[int, int, str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


class _HashingWriter:
    """Writes through to a file and feeds the same bytes to a hash (the shard's sha256 without a reread)."""

    def __init__(self, stream, digest) -> None:
        self.stream, self.digest, self.position = stream, digest, 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.stream.write(data)
        self.position += len(data)


def _reason(error: Exception, item: str) -> str:
    """The first line of the message, without a leading file path (the item id names the file)."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    head, separator, rest = message.partition(": ")
    return rest if separator and head.endswith(Path(item).name) else message


def _with_shard(manifest: Manifest, shard: ShardRecord) -> Manifest:
    return replace(manifest, shards=manifest.shards + (shard,), skipped=manifest.skipped + shard.skipped)


def _save(out: Path, manifest: Manifest) -> Manifest:
    """Write the manifest with its counts and pixel summary brought up to date; returns what was written."""
    counts, pixels = summarise(manifest.class_names, manifest.shards)
    manifest = replace(manifest, counts=counts, pixels=pixels)
    atomic_write_json(out / MANIFEST, manifest.to_json())
    return manifest

