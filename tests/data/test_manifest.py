from __future__ import annotations

import numpy as np
import pytest
from tests.data.datafiles import random_image, write_image

from medtk.data import load_dataset
from medtk.errors import DataError


def _manifest(folder, rows, header="path,label,patient_id"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def _images(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    return [write_image(folder / "img" / f"{i:03d}.png", random_image(rng)).relative_to(folder).as_posix()
            for i in range(count)]


def test_manifest_with_patients_is_split_by_patient(tmp_path):
    paths = _images(tmp_path, 60)
    rows = [(p, "pneumonia" if i % 3 == 0 else "normal", f"P{i // 4}") for i, p in enumerate(paths)]
    dataset = load_dataset(str(_manifest(tmp_path, rows)), seed=3)
    assert dataset.split_origin == "grouped"
    assert dataset.class_names == ("normal", "pneumonia")
    seen = {}
    for name, split in dataset.splits.items():
        for patient in split.patient_ids:
            assert seen.setdefault(patient, name) == name
    assert sum(len(s) for s in dataset.splits.values()) == 60
    assert dataset.splits["train"].ids[0].startswith("img/")


def test_manifest_without_patients_and_numeric_labels(tmp_path):
    paths = _images(tmp_path, 30)
    rows = [(p, [10, 2, 1][i % 3]) for i, p in enumerate(paths)]
    dataset = load_dataset(str(_manifest(tmp_path, rows, header="path,label")))
    assert dataset.class_names == ("1", "2", "10")
    assert dataset.split_origin == "stratified"
    assert dataset.splits["train"].patient_ids is None


def test_missing_columns(tmp_path):
    path = _manifest(tmp_path, [("a.png", "x")], header="file,label")
    with pytest.raises(DataError, match=r"manifest\.csv: missing column\(s\) path; expected a header row "
                                        r"path,label\[,patient_id\], found file,label"):
        load_dataset(str(path))


def test_unknown_files(tmp_path):
    paths = _images(tmp_path, 2)
    path = _manifest(tmp_path, [(paths[0], "a", "p1"), ("img/gone.png", "b", "p2"), ("nope.dcm", "b", "p3")])
    with pytest.raises(DataError, match=r"manifest\.csv: 2 listed files do not exist .*: img/gone\.png, nope\.dcm"):
        load_dataset(str(path))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("img/000.png", "", "p")], r"manifest\.csv:2: empty label"),
        ([("img/000.png", "a", "p"), ("img/000.png", "b", "q")], r"manifest\.csv:3: img/000\.png is listed twice"),
        ([("img/000.png", "a", "")], r"manifest\.csv:2: empty patient_id for img/000\.png"),
        ([], r"manifest\.csv: the manifest lists no images"),
    ],
)
def test_bad_rows(tmp_path, rows, message):
    _images(tmp_path, 1)
    with pytest.raises(DataError, match=message):
        load_dataset(str(_manifest(tmp_path, rows)))


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match=r"labels\.csv: no such manifest file"):
        load_dataset(str(tmp_path / "labels.csv"))
