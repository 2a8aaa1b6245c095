"""A variant that failed compress's quality gate says so in its own sealed metadata, and the runtime warns
on loading it (issue 22); files without the record (float32, older exports) load as before."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from tests.runtime.runtime_models import with_quality_gate

from medtk.runtime import Classifier
from medtk.runtime.metadata import GateFailure, ModelCalibration, ModelMetadata, QualityGate, read_metadata

FAILED = QualityGate(passed=False, failures=(GateFailure("max_auc_drop", 0.0712, 0.02),
                                             GateFailure("min_cam_correlation", 0.61, 0.8)))
NOT_APPLIED = ModelCalibration(temperature=1.0, applied=False, fitted_temperature=2.51,
                               reason="fitted temperature 2.510 not applied (the model ships uncalibrated): held-out "
                                      "NLL did not improve beyond its standard error")


@pytest.fixture(scope="module")
def gated(int8_model: Path, tmp_path_factory) -> dict[str, Path]:
    """The real int8 test model re-sealed as a failed and as a passed variant."""
    folder = tmp_path_factory.mktemp("gated")
    data = int8_model.read_bytes()
    paths = {"failed": folder / "int8_failed.tflite", "passed": folder / "int8_passed.tflite"}
    paths["failed"].write_bytes(with_quality_gate(data, FAILED, NOT_APPLIED))
    paths["passed"].write_bytes(with_quality_gate(data, QualityGate(passed=True)))
    return paths


def _load(path: Path) -> tuple[Classifier, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = Classifier(path, num_threads=1)
    return classifier, [str(w.message) for w in caught]


def test_the_gate_outcome_and_calibration_travel_sealed_in_the_file(gated):
    metadata = read_metadata(gated["failed"])
    assert metadata.quality_gate == FAILED and metadata.failed_gate
    assert metadata.calibration == NOT_APPLIED
    assert read_metadata(gated["passed"]).quality_gate == QualityGate(passed=True)
    assert not read_metadata(gated["passed"]).failed_gate


def test_a_failed_variant_loads_with_a_warning_naming_its_gates(gated, gray_image):
    classifier, messages = _load(gated["failed"])
    gate_warnings = [m for m in messages if "quality gate" in m]
    assert gate_warnings == [f"{gated['failed']}: variant int8 failed compress's quality gate (max_auc_drop 0.0712 "
                             f"> 0.02; min_cam_correlation 0.61 < 0.8); it is not the variant compress recommends - "
                             f"do not deploy it"]
    assert classifier.metadata.calibration.reason.endswith("held-out NLL did not improve beyond its standard error")
    assert classifier.predict(gray_image).label in classifier.labels  # it warns, it does not refuse


def test_passed_ungated_and_older_files_load_without_a_gate_warning(gated, float_model):
    for path in (gated["passed"], float_model):  # float_model: no quality_gate, as float32 and older exports
        _, messages = _load(path)
        assert not [m for m in messages if "quality gate" in m], messages
    assert read_metadata(float_model).quality_gate is None


def test_older_metadata_without_the_new_keys_still_reads():
    older = {"format": "medtk-model", "schema_version": 3, "labels": ["a", "b"],
             "input": {"size": 8, "channels": 1, "dtype": "float32"}, "calibration": {"temperature": 1.5}}
    data = ModelMetadata.from_dict(older)
    assert data.calibration == ModelCalibration(temperature=1.5)  # applied unknown: recorded before the decision
    assert data.calibration.applied is None and data.quality_gate is None and not data.failed_gate
    assert ModelMetadata.from_dict({**older, "calibration": {}}).calibration is None  # schema 1 wrote it empty
