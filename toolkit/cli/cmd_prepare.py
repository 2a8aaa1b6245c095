"""`medtk prepare`: decode a data source once, at model size, into a prepared dataset (TFRecord shards)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def prepare(
    data: Annotated[str, typer.Option("--data", help="SRC: .npz, folder, CSV manifest, synthetic[:N], medmnist:NAME.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the prepared dataset (a rerun continues an interrupted one).")],
    input_size: Annotated[int, typer.Option("--input-size", help="Square model input size in pixels.")],
    channels: Annotated[Optional[int], typer.Option("--channels", help="1 or 3 [default: 1 for grayscale data, else 3].")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Spec file (TOML): its [data] section splits as medtk train would.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the split and of the training shards' order.")] = None,
    subset: Annotated[Optional[int], typer.Option("--subset", help="Use at most N images per split (smoke runs).")] = None,
    shard_mb: Annotated[int, typer.Option("--shard-mb", help="Approximate size of one shard file in MiB.")] = 128,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Decoding threads [default: up to 4].")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a prepared dataset made from another source or preprocessing.")] = False,
) -> None:
    """Decode every image once through the device's preprocessing into TFRecord shards + manifest.json."""
    from medtk.config import load_config
    from medtk.data.prepared.source import prepare_source
    from medtk.errors import ConfigError

    if shard_mb < 1:
        raise ConfigError(f"--shard-mb {shard_mb} must be at least 1")
    settings = load_config(config, {"data": {"src": data, "seed": seed, "subset": subset}}).data
    result = prepare_source(
        settings.src, out, input_size, channels, seed=settings.seed, val_fraction=settings.val_fraction,
        test_fraction=settings.test_fraction, max_bad_fraction=settings.max_bad_fraction,
        subset=settings.subset or None, shard_bytes=shard_mb * 1024 * 1024, threads=threads, overwrite=overwrite,
    )
    manifest = result.manifest
    counts = ", ".join(f"{split} {sum(per_class.values())}" for split, per_class in manifest.counts.items())
    typer.echo(f"prepared {out}: {counts} images at {manifest.preprocessing.input_size} px, "
               f"{manifest.preprocessing.channels} channel(s); {len(manifest.shards)} shards "
               f"({result.shards_written} written, {result.shards_reused} reused); {len(manifest.skipped)} skipped")
