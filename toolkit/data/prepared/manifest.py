"""manifest.json of a prepared dataset: what it holds, what made it, and which shards are done.

One versioned document (`medtk-prepared/1`), rewritten atomically after every finished shard, so after
a kill the file says exactly which shards are complete and what they were made from (source digest,
preprocessing, layout); a rerun compares those before it reuses anything. Counts and the pixel summary
are derived from the shard records on every write, so a reader outside medtk finds them ready.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterable

from medtk.jsondoc import Document

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Preprocessing:
    """How each image became model input (the device's own code, `medtk.runtime.imaging`)."""

    input_size: int
    channels: int
    intensity_mapping: str  # medtk.runtime.intensity mapping to 8 bits
    interpolation: str  # medtk.runtime.imaging.INTERPOLATION_RULE
    function: str = "medtk.runtime.imaging.prepare_input"


@dataclass(frozen=True)
class Layout:
    """How items are cut into shards: train is written in a seeded random order, val/test as split."""

    items_per_shard: int
    shuffle_seed: int
    shards: dict[str, int]  # split -> number of shards planned


@dataclass(frozen=True)
class SourceRecord:
    src: str
    split_origin: str  # "given", "stratified", "grouped", "file" (medtk.data.Dataset.split_origin)
    digest: str  # sha256 of the class names and every item's (split, id, label, group) in write order
    items: dict[str, int]  # split -> items listed (before decoding failures)


@dataclass(frozen=True)
class SkippedItem:
    """An item left out, and why; `split` is empty when the source check dropped it before splitting."""

    item: str
    reason: str
    split: str = ""


@dataclass(frozen=True)
class PixelStats:
    """Exact integer sums over a shard's pixels, so split summaries combine without rounding."""

    count: int = 0
    total: int = 0
    squares: int = 0


@dataclass(frozen=True)
class ShardRecord:
    split: str
    index: int
    file: str  # name inside the dataset folder
    records: int
    bytes: int
    sha256: str
    class_counts: tuple[int, ...]  # per class index, in class_names order
    pixels: PixelStats
    index_file: str  # CSV beside the shard: offset, label, source_id, group per record (random access)
    index_sha256: str
    skipped: tuple[SkippedItem, ...] = ()
    # sha256 over its items' source files as found when it was written (id, size, modification time; None
    # for in-memory sources and datasets written before it was recorded): a rerun rewrites a shard whose
    # files changed under the same names
    sources_sha256: str | None = None


@dataclass(frozen=True)
class PixelSummary:
    mean: float
    std: float


@dataclass(frozen=True)
class Manifest(Document):
    SCHEMA: ClassVar[str] = "medtk-prepared/1"

    complete: bool
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    layout: Layout
    source: SourceRecord
    medtk_version: str
    finding: str | None = None
    intensity: dict | None = None  # medtk.runtime.intensity.Intensity.to_dict(): the kinds of source images
    shards: tuple[ShardRecord, ...] = ()
    skipped: tuple[SkippedItem, ...] = ()  # every item left out: the source check's and decoding failures
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> records written
    pixels: dict[str, PixelSummary] = field(default_factory=dict)  # split -> uint8 pixel mean/std

    def shards_of(self, split: str) -> tuple[ShardRecord, ...]:
        return tuple(sorted((s for s in self.shards if s.split == split), key=lambda s: s.index))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(name for name, count in self.layout.shards.items() if count)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def index_name(shard_file: str) -> str:
    return shard_file.removesuffix(".tfrecord") + ".index.csv"


INDEX_COLUMNS = ("offset", "label", "source_id", "group")


def source_digest(class_names: Iterable[str], rows: Iterable[tuple[str, str, int, str]]) -> str:
    """sha256 over the class names and (split, id, label, group) rows: a changed source changes it."""
    digest = hashlib.sha256(json.dumps(list(class_names)).encode("utf-8"))
    for row in rows:
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def summarise(class_names: tuple[str, ...], shards: Iterable[ShardRecord]) -> tuple[dict, dict]:
    """(counts split -> class -> records, pixels split -> PixelSummary) over the given shards."""
    counts: dict[str, list[int]] = {}
    sums: dict[str, list[int]] = {}
    for shard in shards:
        per_class = counts.setdefault(shard.split, [0] * len(class_names))
        for k, n in enumerate(shard.class_counts):
            per_class[k] += n
        total = sums.setdefault(shard.split, [0, 0, 0])
        total[0] += shard.pixels.count
        total[1] += shard.pixels.total
        total[2] += shard.pixels.squares
    pixels = {}
    for split, (count, total, squares) in sums.items():
        if count:
            mean = total / count
            pixels[split] = PixelSummary(mean=round(mean, 4), std=round(math.sqrt(max(squares / count - mean**2, 0.0)), 4))
    return ({split: dict(zip(class_names, per_class)) for split, per_class in counts.items()}, pixels)
