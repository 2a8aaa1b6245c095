"""A binary model with an operating point decides by its threshold on the finding's probability, on the
device exactly as at export; without one it is argmax. `Prediction` says which threshold was used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medtk.runtime import Classifier
from medtk.runtime.metadata import OperatingPoint, embed_metadata, read_metadata


def _with_decision(source: Path, target: Path, positive: str | None, threshold: float | None) -> Path:
    data = source.read_bytes()
    metadata = read_metadata(data)
    point = None if threshold is None else OperatingPoint(rule=f"threshold:{threshold}", threshold=threshold)
    target.write_bytes(embed_metadata(data, replace(metadata, positive_class=positive, operating_point=point)))
    return target


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (80, 80), dtype=np.uint8) for _ in range(12)]


def test_the_threshold_decides_and_is_reported(test_models, tmp_path, images):
    base = Classifier(test_models.float32, num_threads=1)
    finding = base.labels[0]  # class 0 as the finding: the decision must not assume index 1
    probabilities = [base.predict(image).probabilities[finding] for image in images]
    threshold = float(np.median(probabilities))
    model = Classifier(_with_decision(test_models.float32, tmp_path / "decided.tflite", finding, threshold), num_threads=1)
    for image, p in zip(images, probabilities):
        prediction = model.predict(image)
        assert prediction.threshold == pytest.approx(threshold)
        assert prediction.positive == (p >= threshold)
        assert prediction.label == (finding if p >= threshold else base.labels[1])
        assert prediction.probabilities[finding] == pytest.approx(p, abs=1e-6)
        assert prediction.to_dict()["threshold"] == pytest.approx(threshold)


def test_without_an_operating_point_the_decision_is_argmax(test_models, tmp_path, images):
    finding = Classifier(test_models.float32, num_threads=1).labels[1]
    model = Classifier(_with_decision(test_models.float32, tmp_path / "argmax.tflite", finding, None), num_threads=1)
    for image in images:
        prediction = model.predict(image)
        assert prediction.threshold is None
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert prediction.positive == (prediction.label == finding)


def test_the_cam_is_drawn_on_the_geometry_the_model_carries(test_models, tmp_path, images):
    """`cam_geometry` in the metadata moves the map to where the cells looked; it reads back from the file."""
    from medtk.runtime.cam import class_map
    from medtk.runtime.geometry import CellGeometry

    data = test_models.float32.read_bytes()
    metadata = read_metadata(data)
    geometry = CellGeometry(input_size=metadata.input.size, stride=(32.0, 32.0), origin=(0.0, 0.0))
    target, older = tmp_path / "with_geometry.tflite", tmp_path / "older.tflite"
    target.write_bytes(embed_metadata(data, replace(metadata, cam_geometry=geometry)))
    older.write_bytes(embed_metadata(data, replace(metadata, cam_geometry=None)))  # exported before cam_geometry
    assert read_metadata(target.read_bytes()).cam_geometry == geometry
    with pytest.warns(UserWarning, match=r"older\.tflite: exported before medtk recorded where the CAM's cells sit"):
        plain = Classifier(older, num_threads=1)  # drawn as an even grid, as before, and says so
    placed = Classifier(target, num_threads=1)
    for image in images[:2]:
        before, after = plain.predict(image), placed.predict(image)
        np.testing.assert_array_equal(before.raw_cam, after.raw_cam)
        height, width = image.shape[:2]
        expected = class_map(after.raw_cam, after.class_index, height, width, geometry)
        np.testing.assert_allclose(after.cam, expected, atol=1e-6)
        assert not np.allclose(after.cam, before.cam, atol=1e-3)
