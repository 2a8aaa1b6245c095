"""`describe`: the summary of a dataset written to RUN/data.json; no patient ids in it."""

from __future__ import annotations

from medtk.data.base import Dataset
from medtk.schema.data import DataSummary, ImageSummary, SkippedFile


def describe(dataset: Dataset) -> DataSummary:
    """Source, classes, counts per split and class, split origin, skipped files, image shapes."""
    patients = {name: len(set(split.patient_ids)) for name, split in dataset.splits.items() if split.patient_ids}
    return DataSummary(
        source=dataset.source,
        classes=tuple(dataset.class_names),
        split_origin=dataset.split_origin,
        sizes={name: len(split) for name, split in dataset.splits.items()},
        counts=dataset.counts(),
        skipped=tuple(SkippedFile(item=s.item, reason=s.reason) for s in dataset.skipped),
        images=ImageSummary(dtype="uint8", shapes=dict(dataset.image_shapes)),
        patients=patients or None,  # how many, never who
        intensity=dataset.intensity.to_dict() if dataset.intensity is not None else None,
    )
