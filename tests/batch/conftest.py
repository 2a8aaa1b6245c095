"""Fixtures for the batch tests: the session's real int8 test model sealed with an operating point, and
a labelled folder of PNG and DICOM files with one corrupt file among them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.runtime.dicom_builders import image_dataset, write_dicom
from tests.runtime.runtime_models import GRAY_LABELS, synthetic_images, toy_labels, with_operating_point

THRESHOLD = 0.4
CORRUPT = "normal/broken.png"


@pytest.fixture(scope="session")
def batch_model(test_models, tmp_path_factory) -> Path:
    """The int8 test model with positive class "pneumonia" and a threshold of 0.4, as compress exports it."""
    path = tmp_path_factory.mktemp("batch_model") / "int8_op.tflite"
    path.write_bytes(with_operating_point(test_models.int8.read_bytes(), THRESHOLD))
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """normal/ and pneumonia/ with 16 PNG and 4 DICOM toy images (labels by the toy rule) and one corrupt PNG."""
    root = tmp_path_factory.mktemp("archive")
    images = synthetic_images(np.random.default_rng(3), 20)
    for index, (pixels, label) in enumerate(zip(images, toy_labels(images))):
        folder = root / GRAY_LABELS[label]
        folder.mkdir(exist_ok=True)
        if index % 5 == 4:
            write_dicom(folder / f"scan{index:02d}.dcm", image_dataset(np.ascontiguousarray(pixels[:, :, 0])))
        else:
            assert cv2.imwrite(str(folder / f"scan{index:02d}.png"), pixels[:, :, 0])
    (root / CORRUPT).parent.mkdir(exist_ok=True)
    (root / CORRUPT).write_bytes(b"\x89PNG\r\n\x1a\nnot really a PNG")
    return root


@pytest.fixture(scope="session")
def local_results(batch_model, image_folder, tmp_path_factory) -> Path:
    """The folder predicted once on the local pool (2 workers, parts of 4 rows)."""
    from medtk.batch.job import BatchOptions, run_batch

    out = tmp_path_factory.mktemp("results") / "results.parquet"
    run_batch(batch_model, str(image_folder), out, BatchOptions(workers=2, rows_per_part=4))
    return out


def read_rows(results: Path) -> list[dict]:
    import pyarrow.parquet as pq

    from medtk.batch.store import part_files

    rows = [row for part in part_files(results) for row in pq.read_table(part).to_pylist()]
    return sorted(rows, key=lambda row: row["source_id"])
