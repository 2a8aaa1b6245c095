"""Reading a prepared dataset without TensorFlow: numpy, protobuf and google-crc32c only.

`open_prepared(path)` checks the manifest (a finished `medtk-prepared/1`); `items(split)` streams the
split's shards in order, one record at a time, checksums verified, and checks each shard's record count
against the manifest, so a truncated or swapped file is an error, never a silently shorter split.
`verify()` rereads every shard against its sha256 (what a resumed `prepare` does for the shards it keeps).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from medtk.data.prepared.example import PreparedItem, decode
from medtk.data.prepared.manifest import INDEX_COLUMNS, MANIFEST, Manifest, ShardRecord, file_sha256
from medtk.data.prepared.tfrecord import read_record_at, read_records
from medtk.errors import DataError


@dataclass(frozen=True)
class RecordRef:
    """Where one record is (a shard and the byte its record starts at), with its index row's id, label and
    group: enough to list a split, or to hand a record to another process, without reading an image."""

    shard: Path
    offset: int
    source_id: str
    label: int
    group: str

    def read(self) -> PreparedItem:
        return read_item(self.shard, self.offset)


def read_item(shard: Path, offset: int) -> PreparedItem:
    """The record at byte `offset` of `shard` (from its index), checksums verified."""
    return decode(read_record_at(shard, offset), f"{shard} byte {offset}")


@dataclass(frozen=True)
class PreparedDataset:
    """A finished prepared dataset: its folder and manifest; items stream from its shards."""

    root: Path
    manifest: Manifest

    @property
    def splits(self) -> tuple[str, ...]:
        """Splits that hold at least one shard, in train/val/test order."""
        return self.manifest.splits

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.class_names)

    def shards(self, split: str) -> tuple[ShardRecord, ...]:
        self._require(split)
        return self.manifest.shards_of(split)

    def shard_paths(self, split: str) -> tuple[Path, ...]:
        return tuple(self.root / shard.file for shard in self.shards(split))

    def count(self, split: str) -> int:
        return sum(shard.records for shard in self.shards(split))

    def items(self, split: str) -> Iterator[PreparedItem]:
        """Every item of `split`, in the order written (train: the seeded shuffle `prepare` made)."""
        for shard in self.shards(split):
            yield from self.read(shard)

    def index(self, split: str) -> Iterator[RecordRef]:
        """Every record of `split` in the order written, from the shards' index files (no image is read)."""
        for shard in self.shards(split):
            path = self.root / shard.index_file
            if not path.is_file():
                raise DataError(f"{path}: shard index listed in the manifest is missing")
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                if tuple(next(reader, ())) != INDEX_COLUMNS:
                    raise DataError(f"{path}: not a shard index (expected columns {','.join(INDEX_COLUMNS)})")
                rows = [RecordRef(self.root / shard.file, int(offset), item, int(label), group)
                        for offset, label, item, group in reader]
            if len(rows) != shard.records:
                raise DataError(f"{path}: {len(rows)} rows, the manifest lists {shard.records} records")
            yield from rows

    def read(self, shard: ShardRecord) -> Iterator[PreparedItem]:
        """One shard's items (a unit of work for a parallel reader)."""
        path = self.root / shard.file
        if not path.is_file():
            raise DataError(f"{path}: shard listed in {MANIFEST} is missing")
        seen = 0
        for seen, record in enumerate(read_records(path), start=1):
            yield decode(record, f"{path} record {seen - 1}")
        if seen != shard.records:
            raise DataError(f"{path}: {seen} records, {MANIFEST} lists {shard.records}")

    def verify(self) -> None:
        """Every shard's bytes against the sha256 in the manifest (a full read of the dataset)."""
        for shard in self.manifest.shards:
            path = self.root / shard.file
            if not path.is_file() or file_sha256(path) != shard.sha256:
                raise DataError(f"{path}: missing or altered since it was prepared (sha256 differs)")

    def _require(self, split: str) -> None:
        if split not in self.manifest.layout.shards:
            raise DataError(f"{self.root}: no split {split!r}; it holds {', '.join(self.manifest.layout.shards)}")


def is_prepared(path: str | Path) -> bool:
    """True for a folder with a prepared dataset's manifest (finished or not)."""
    return (Path(path) / MANIFEST).is_file()


def open_prepared(path: str | Path) -> PreparedDataset:
    root = Path(path)
    file = root / MANIFEST
    if not file.is_file():
        raise DataError(f"{root}: not a prepared dataset ({MANIFEST} missing); make one with medtk prepare")
    try:
        manifest = Manifest.from_json(json.loads(file.read_text(encoding="utf-8")), file)
    except (ValueError, OSError) as error:
        raise DataError(f"{file}: unreadable ({error})") from None
    if not manifest.complete:
        done, planned = len(manifest.shards), sum(manifest.layout.shards.values())
        raise DataError(f"{root}: preparation not finished ({done} of {planned} shards); rerun medtk prepare "
                        "with the same options to complete it")
    return PreparedDataset(root=root, manifest=manifest)
