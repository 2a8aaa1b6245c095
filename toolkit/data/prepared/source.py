"""From a data source to a prepared dataset, split exactly as `medtk train` would split it.

The source is loaded by `medtk.data.load_dataset` with the run configuration's `[data]` options (seed,
fractions, bad-file limit, subset), so the prepared train/val/test hold the items a `medtk train` of the
same source would use. That loader's bad-file check decodes each file to find unreadable ones before
splitting (the split depends on which files are usable); it keeps each image at model size
(`DecodedStage`, a temporary file beside `out`), and `prepare_dataset` writes the shards from those.
"""

from __future__ import annotations

from pathlib import Path

from medtk.data.loader import load_dataset
from medtk.data.prepared.writer import PrepareResult, check_destination, check_options, prepare_dataset
from medtk.data.staging import DecodedStage


def prepare_source(src: str, out: Path, input_size: int, channels: int | None, *, seed: int = 0,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, max_bad_fraction: float = 0.05,
                   subset: int | None = None, shard_bytes: int | None = None, threads: int | None = None,
                   overwrite: bool = False) -> PrepareResult:
    """Load, split and prepare `src` into `out`; `channels` None: 1 for grayscale sources, else 3."""
    from medtk.data.sources import resolve_source
    from medtk.data.prepared.writer import SHARD_BYTES

    shard_bytes = SHARD_BYTES if shard_bytes is None else shard_bytes
    check_options(input_size, channels or 1, shard_bytes, threads)
    check_destination(Path(out), overwrite)
    with DecodedStage(Path(out), input_size) as decoded:
        dataset = load_dataset(resolve_source(src), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                               max_bad_fraction=max_bad_fraction, subset=subset, on_decoded=decoded.keep)
        if channels is None:
            channels = 1 if dataset.splits["train"].image(0).ndim == 2 else 3
        return prepare_dataset(dataset, Path(out), input_size, channels, seed=seed, shard_bytes=shard_bytes,
                               threads=threads, overwrite=overwrite, decoded=decoded)
