"""Fixtures for `medtk serve`: real small models, real DICOM files, an in-process node, an Orthanc."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.serve.serve_helpers import Orthanc, free_port, pneumonia_images, radiograph, with_operating_point


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory) -> dict[str, Path]:
    """'op': binary with positive class 'pneumonia' and threshold 0.4; 'argmax': no operating point."""
    from tests.runtime.runtime_models import build_runtime_models

    folder = tmp_path_factory.mktemp("serve_models")
    built = build_runtime_models(folder, names=("float32", "bare"))
    op = with_operating_point(built["bare"], built["float32"], folder / "pneumonia_op.tflite")
    return {"op": op, "argmax": built["float32"]}


@pytest.fixture(scope="session")
def failed_variant(serve_models, tmp_path_factory):
    """The 'op' model re-sealed as a variant that failed compress's AUC gate."""
    from tests.runtime.runtime_models import with_quality_gate

    from medtk.runtime.metadata import GateFailure, QualityGate

    path = tmp_path_factory.mktemp("failed_variant") / "failed_variant.tflite"
    gate = QualityGate(passed=False, failures=(GateFailure("max_auc_drop", 0.07, 0.01),))
    path.write_bytes(with_quality_gate(serve_models["op"].read_bytes(), gate))
    return path


@pytest.fixture(scope="session")
def chest_images(pneumonia_npz):
    return pneumonia_images(pneumonia_npz, 48)


@pytest.fixture(scope="session")
def dicom_files(tmp_path_factory, chest_images) -> dict[str, Path]:
    """CT and MR from pydicom's test data; CR/DX from PneumoniaMNIST, plain and compressed."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEG2000Lossless, RLELossless

    folder = tmp_path_factory.mktemp("dicom")
    files = {"ct": Path(get_testdata_file("CT_small.dcm")), "mr": Path(get_testdata_file("MR_small.dcm"))}
    made = {
        "cr": radiograph(chest_images[0]),
        "dx": radiograph(chest_images[1], modality="DX"),
        "cr_rle": radiograph(chest_images[2], transfer_syntax=RLELossless),
        "cr_j2k": radiograph(chest_images[3], transfer_syntax=JPEG2000Lossless),
    }
    for name, ds in made.items():
        files[name] = folder / f"{name}.dcm"
        ds.save_as(files[name], enforce_file_format=True)
    return files


@pytest.fixture
def start_node(tmp_path, serve_models):
    """Start an in-process node on free loopback ports; every node started is stopped afterwards."""
    from medtk.serve import ServeConfig, ServeNode

    nodes = []

    def start(model: str | Path = "op", **overrides) -> ServeNode:
        """`model`: a key of `serve_models`, or a model file."""
        options = dict(model=serve_models[model] if isinstance(model, str) else model, host="127.0.0.1", http_port=0, dicom_port=0,
                       spool=tmp_path / f"spool{len(nodes)}", workers=1, threads=1, min_free_bytes=0,
                       retry_initial_seconds=0.2, retry_max_seconds=1.0)
        options.update(overrides)
        node = ServeNode(ServeConfig(**options)).start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def orthanc(tmp_path):
    """A fresh Orthanc on free loopback ports that accepts C-STORE only from MEDTK at 127.0.0.1."""
    server = Orthanc(tmp_path / "orthanc", http_port=free_port(), dicom_port=free_port()).start()
    yield server
    server.stop()
