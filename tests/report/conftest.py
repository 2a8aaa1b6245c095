"""Real small runs for the report tests: trained, compressed and benchmarked by medtk's own stages.

`synthetic_run`: MobileNetV2 at 64 px (a 2 x 2 CAM, so maps have a location) on synthetic:120, one
epoch, then `compress` with a plain int8 variant (no pruning/QAT: slow and not what the report tests)
and `bench` on this host plus a host-estimate for a Raspberry Pi 5. `dicom_run`: the same model on a
folder of real DICOM files whose patient names and ids must never reach the report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SYNTHETIC = {
    "data": {"src": "synthetic:120"},
    "model": {"arch": "mobilenetv2", "input_size": 64, "weights": "none"},
    "augment": {"enabled": False},
    "train": {"epochs": 1, "batch_size": 16},
}


def _train(out: Path, overrides: dict) -> Path:
    from medtk.config import load_config
    from medtk.train.workflow import train

    train(load_config(None, overrides), out)
    return out


def _compress(run: Path) -> None:
    from medtk.compress.options import CompressOptions
    from medtk.compress.workflow import compress_run

    # The gates are not what the report tests; ONNX variants are the compress tests' (their export is minutes).
    compress_run(run, CompressOptions(int8=True, prune=False, qat=False, onnx=False, calibration=16, max_auc_drop=1.0,
                                      min_cam_correlation=None, max_cam_peak_shift=None, max_ece_increase=None))


def _bench(run: Path) -> None:
    from medtk.runtime.bench import BenchSettings, run_bench, write_report

    models = [run / "export" / "float32.tflite", run / "export" / "int8.tflite"]
    settings = BenchSettings(runs=3, warmup=1)
    write_report(run_bench(models, settings), run / "bench.json")
    write_report(run_bench(models, settings, device="raspberry-pi-5"), run / "bench-raspberry-pi-5.json")


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Path:
    """A complete run folder (train, eval, compress, bench); tests copy it before changing anything."""
    run = _train(tmp_path_factory.mktemp("report") / "run", SYNTHETIC)
    _compress(run)
    _bench(run)
    return run


@pytest.fixture()
def run_copy(synthetic_run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(synthetic_run, target)
    return target


DICOM_IDENTITIES = [(f"Testpatient^Person{i:02d}", f"PID-{7301 + i}") for i in range(20)]


def write_dicom_folder(root: Path) -> list[tuple[str, str]]:
    """Class folders of real DICOM files (pydicom's CT/MR samples) each with its own patient name and id."""
    import pydicom
    from pydicom.data import get_testdata_file

    identities = []
    for i, (name, patient_id) in enumerate(DICOM_IDENTITIES):
        label, sample = ("normal", "CT_small.dcm") if i % 2 == 0 else ("lesion", "MR_small.dcm")
        dataset = pydicom.dcmread(get_testdata_file(sample))
        identities.append((str(dataset.PatientName), str(dataset.PatientID)))  # the shipped values, too
        dataset.PatientName, dataset.PatientID = name, patient_id
        target = root / label / f"image_{i:02d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        dataset.save_as(target)
        identities.append((name, patient_id))
    return sorted(set(identities))


@pytest.fixture(scope="session")
def dicom_run(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    base = tmp_path_factory.mktemp("dicom")
    identities = write_dicom_folder(base / "data")
    overrides = {**SYNTHETIC, "data": {"src": str(base / "data")}, "model": {**SYNTHETIC["model"], "input_size": 32}}
    run = _train(base / "run", overrides)
    return run, identities
