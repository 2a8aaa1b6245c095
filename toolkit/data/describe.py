"""`describe`: the JSON summary of a dataset written to RUN/data.json; no patient ids in it."""

from __future__ import annotations

from medtk.data.base import Dataset


def describe(dataset: Dataset) -> dict:
    """Source, classes, counts per split and class, split origin, skipped files, image shapes."""
    summary = {
        "source": dataset.source,
        "classes": list(dataset.class_names),
        "split_origin": dataset.split_origin,
        "sizes": {name: len(split) for name, split in dataset.splits.items()},
        "counts": dataset.counts(),
        "skipped": [{"item": s.item, "reason": s.reason} for s in dataset.skipped],
        "images": {"dtype": "uint8", "shapes": dict(dataset.image_shapes)},
    }
    patients = {name: len(set(split.patient_ids)) for name, split in dataset.splits.items() if split.patient_ids}
    if patients:
        summary["patients"] = patients  # how many, never who
    return summary
