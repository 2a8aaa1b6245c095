"""What a batch job reads: items (source id, the image or where it is, the true label if known).

The input side is small and pluggable on purpose: a job needs only an iterable of `Item`s and, when
known, how many there are. Files stay paths until a worker decodes them (`Classifier.predict` decodes
with the model's own intensity mapping, exactly as `medtk predict FILE` does); in-memory sources (a
MedMNIST `.npz`) hand over their decoded arrays through the source's own loader, as training saw them.
A prepared dataset (`medtk prepare`) is listed from its shards' index files and each record is read
when its image is needed (`PreparedRecord`: on Ray, by the actor, so the driver never holds pixels); its
pixels are already the model's input (the same `prepare_input`), so a model of another input size or
channel count is refused rather than resized a second time.

Source ids are what the data sources call their items (paths relative to the root, `test[12]`):
never a DICOM header field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from medtk.errors import DataError

if TYPE_CHECKING:
    from medtk.data.prepared import PreparedDataset

Image = Path | np.ndarray


@dataclass(frozen=True)
class Item:
    """One image of the job. `image` is a path, an array, or a callable returning one (decoded lazily)."""

    source_id: str
    image: Image | Callable[[], Image]
    truth: str | None = None  # the ground-truth class name, when the source has labels

    def load(self) -> Image:
        return self.image() if callable(self.image) else self.image


@dataclass(frozen=True)
class PreparedRecord:
    """One record of a prepared dataset's shard (its file and byte offset), read when called: light enough to
    send to another process, which reads the shard itself (on a cluster, from storage every node mounts)."""

    shard: Path
    offset: int

    def __call__(self) -> np.ndarray:
        from medtk.data.prepared.reader import read_item

        return read_item(self.shard, self.offset).image


@dataclass(frozen=True)
class ItemSource:
    """The items of a job in a stable order; `count` is None when the source cannot tell without reading."""

    description: str
    items: Iterable[Item]
    count: int | None
    labelled: bool

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)


def open_items(src: str, labels: tuple[str, ...], model_input: tuple[int, int, str] | None = None) -> ItemSource:
    """The items of `src`: a folder tree, a CSV manifest (`path,label[,patient_id]`), a MedMNIST `.npz` or
    a prepared dataset (every split, in the order written; `model_input` (size, channels, resize rule) must be its own).

    A folder whose top-level subfolders are all class names of the model (`labels`), or a split folder
    (train/val/test) of them, is labelled by those folders, as `medtk train` reads it; any other folder
    is an unlabelled tree of images (every image file under it, recursively).
    """
    path = Path(src).expanduser()
    if not path.exists():
        raise DataError(f"{src}: does not exist; expected a folder of images, a CSV manifest or a .npz file")
    from medtk.data.prepared import is_prepared

    if is_prepared(path):
        return _prepared(path, model_input)
    if path.is_dir():
        return _folder(path, labels)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".npz"):
        return _catalog_items(src)
    raise DataError(f"{src}: is not a supported data source; expected a folder of images, a CSV manifest "
                    "(path,label[,patient_id]) or a MedMNIST-layout .npz file")


def _folder(root: Path, labels: tuple[str, ...]) -> ItemSource:
    from medtk.data.base import SPLITS
    from medtk.runtime.inputs import find_images

    top = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    nested = {p.name for split in top & set(SPLITS) for p in (root / split).iterdir() if p.is_dir()}
    by_class = top and top <= set(labels)
    by_split = top and top <= set(SPLITS) and "train" in top and nested and nested <= set(labels)
    if by_class or by_split:
        return _catalog_items(str(root))
    files = find_images(root, max_files=None)
    if not files:
        raise DataError(f"{root}: no image files (PNG, JPEG, TIFF, BMP, DICOM) under it")
    items = [Item(path.relative_to(root).as_posix(), path) for path in files]
    return ItemSource(f"{root} (unlabelled folder tree)", items, len(items), labelled=False)


def _catalog_items(src: str) -> ItemSource:
    """A `medtk.data` catalog as items: files stay paths, in-memory arrays come through the catalog's loader."""
    from medtk.data.sources import open_source

    catalog = open_source(src)
    names = catalog.class_names
    if catalog.files is not None:
        items = [Item(item_id, path, names[int(label)])
                 for item_id, path, label in zip(catalog.ids, catalog.files, catalog.labels)]
    else:
        items = [Item(item_id, _loader(catalog.load, index), names[int(label)])
                 for index, (item_id, label) in enumerate(zip(catalog.ids, catalog.labels))]
    return ItemSource(f"{src} (labelled: {', '.join(names)})", items, len(items), labelled=True)


def _loader(load: Callable[[int], np.ndarray], index: int) -> Callable[[], np.ndarray]:
    return lambda: load(index)


@dataclass(frozen=True)
class _PreparedItems:
    """A prepared dataset's items from its index files; each image is read when loaded (never all in memory)."""

    dataset: PreparedDataset

    def __iter__(self) -> Iterator[Item]:
        names = self.dataset.class_names
        for split in self.dataset.splits:
            for ref in self.dataset.index(split):
                yield Item(ref.source_id, PreparedRecord(ref.shard, ref.offset),
                           names[ref.label] if ref.label >= 0 else None)


def _prepared(root: Path, model_input: tuple[int, int, str] | None) -> ItemSource:
    from medtk.data.prepared import open_prepared

    dataset = open_prepared(root)
    made = dataset.manifest.preprocessing
    if model_input is not None and (made.input_size, made.channels, made.interpolation) != tuple(model_input):
        size, channels, rule = model_input
        raise DataError(f"{root}: prepared at {made.input_size} px x {made.channels} channel(s) resized by "
                        f"{made.interpolation!r}, but the model takes {size} px x {channels} resized by {rule!r}; "
                        f"prepare it again at the model's input (medtk prepare --input-size {size} --channels "
                        f"{channels})")
    shards = [shard for split in dataset.splits for shard in dataset.shards(split)]
    count = sum(shard.records for shard in shards)
    labelled = all(sum(shard.class_counts) == shard.records for shard in shards)
    return ItemSource(f"{root} (prepared dataset: {', '.join(dataset.splits)})", _PreparedItems(dataset), count,
                      labelled=labelled)
