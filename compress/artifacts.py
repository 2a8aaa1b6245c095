"""The exported files: embedded metadata, sizes, and publishing them into RUN/export atomically.

Variants are written to a staging folder inside the run first and moved into `RUN/export/` only when
every variant has been converted and measured, so a crash or a bad input never leaves a half-updated
export folder; files of an earlier run that this run did not produce are removed at publish time.
Staged files are named `<variant>.tflite.partial` until publish, so nothing in a staging folder looks
like a finished model. A staging folder holds an exclusive lock (`flock`) for its whole life: a killed
compress releases it, and the next `Staging` removes every unlocked `RUN/.export-*` folder.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any

from medtk.run import Run
from medtk.runtime.geometry import CellGeometry
from medtk.runtime.imaging import INTERPOLATION_RULE, PREPROCESSING_NOTE
from medtk.runtime.intensity import Intensity
from medtk.runtime.metadata import (ModelCalibration, ModelInput, ModelMetadata, OperatingPoint, QualityGate,
                                    embed_metadata)

log = logging.getLogger(__name__)

STAGING_PREFIX = ".export-"
PARTIAL_SUFFIX = ".partial"
_LOCK_NAME = ".lock"
# A staging folder without a lock file (made by an older medtk, or this instant by another process)
# is removed only when it is older than this.
_UNLOCKED_GRACE_S = 600.0

INTENDED_USE = (
    "Research and engineering evaluation of {labels} classification on images like the training data "
    "({source}); decision support only, not a diagnostic device; check the metrics and CAMs on local data "
    "before any clinical use."
)


def provenance(run_root: Path, config_text: str, source: str) -> dict[str, Any]:
    from medtk import __version__
    from medtk.train.tfenv import tensorflow

    return {
        "run": run_root.resolve().name,
        "data_source": source,
        "config_sha256": sha256(config_text.encode("utf-8")).hexdigest(),
        "medtk_version": __version__,
        "tensorflow_version": tensorflow().__version__,
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def model_metadata(
    *, variant: str, labels: tuple[str, ...], size: int, channels: int, dtype: str, provenance: dict[str, Any],
    metrics: dict[str, Any] | None = None, positive_class: str | None = None,
    operating_point: OperatingPoint | None = None, calibration: ModelCalibration | None = None,
    intensity: Intensity | None = None, cam_geometry: CellGeometry | None = None, quality_gate: QualityGate | None = None,
) -> ModelMetadata:
    """`intensity`: what training saw (`medtk.runtime.intensity.describe_intensity`); None records the
    full-range mapping without the kinds of images, so inputs of another kind are not flagged.
    `calibration`: training's temperature decision (None: uncalibrated, T = 1, reason unknown);
    `quality_gate`: this variant's gate outcome (None: not gated, i.e. the float32 reference)."""
    return ModelMetadata(
        labels=tuple(labels),
        input=ModelInput(
            size=size, channels=channels, dtype=dtype, interpolation=INTERPOLATION_RULE, preprocessing=PREPROCESSING_NOTE
        ),
        variant=variant,
        model_version=f"{provenance['run']}-{provenance['config_sha256'][:8]}",
        intended_use=INTENDED_USE.format(labels="/".join(labels), source=provenance["data_source"]),
        provenance=provenance,
        metrics=metrics or {},
        positive_class=positive_class,
        operating_point=operating_point,
        calibration=calibration if calibration is not None else ModelCalibration(),
        intensity=intensity if intensity is not None else Intensity(),
        cam_geometry=cam_geometry,
        quality_gate=quality_gate,
    )


def gzip_size(model: bytes) -> int:
    """Bytes after gzip -9: what sparsity buys (a download or flash budget), unlike latency."""
    return len(gzip.compress(model, compresslevel=9, mtime=0))


class Staging:
    """A temporary folder inside the run holding this run's files until `publish`."""

    def __init__(self, run: Run):
        self.run = run
        remove_stale_staging(run.root)
        self.root = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=run.root))
        self._lock = _hold_lock(self.root / _LOCK_NAME)

    def path(self, variant: str) -> Path:
        """Where a variant is staged: `<name>.tflite.partial`, never a name that looks final."""
        return self.root / (self.run.export_path(variant).name + PARTIAL_SUFFIX)

    def write(self, variant: str, model: bytes, metadata: ModelMetadata) -> bytes:
        """Embed `metadata` and write the file; returns the bytes written."""
        data = embed_metadata(model, metadata)
        self.path(variant).write_bytes(data)
        return data

    def publish(self, variants: list[str], stale: set[str]) -> dict[str, Path]:
        """Move the variants into RUN/export (one rename each) and drop stale files of earlier runs."""
        self.run.export.mkdir(exist_ok=True)
        final = {}
        for variant in variants:
            target = self.run.export_path(variant)
            os.replace(self.path(variant), target)
            final[variant] = target
        for name in stale - set(variants):
            self.run.export_path(name).unlink(missing_ok=True)
        self.discard()
        return final

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def remove_stale_staging(run_root: Path) -> list[Path]:
    """Remove staging folders left by a killed compress (no live process holds their lock); returns them."""
    removed = []
    for folder in sorted(Path(run_root).glob(STAGING_PREFIX + "*")):
        if not folder.is_dir() or folder.is_symlink() or not _stale(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, a staging folder left by an interrupted compress", folder.name)
        removed.append(folder)
    return removed


def _stale(folder: Path) -> bool:
    lock = folder / _LOCK_NAME
    if not lock.is_file():
        try:
            return time.time() - folder.stat().st_mtime > _UNLOCKED_GRACE_S
        except OSError:
            return False
    try:
        import fcntl
    except ImportError:  # no flock (Windows): only an old folder is stale
        return time.time() - lock.stat().st_mtime > 24 * 3600
    descriptor = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live compress holds it
    finally:
        os.close(descriptor)
    return True


def _hold_lock(path: Path) -> int | None:
    """An exclusive lock held until `discard` or the process ends (the kernel releases it on kill)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl
    except ImportError:
        return descriptor
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return descriptor
