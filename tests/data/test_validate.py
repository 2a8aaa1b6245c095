"""The bad-data pass on real corrupt files."""

from __future__ import annotations

import pytest
from tests.data.datafiles import copy_dicom, make_class_folder

from medtk.data import describe, load_dataset
from medtk.errors import DataError


def _corrupt(root, count):
    (root / "a" / "truncated.png").write_bytes((root / "a" / "a_000.png").read_bytes()[:40])
    (root / "b" / "empty.jpg").write_bytes(b"")
    (root / "b" / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 50)
    for i in range(count - 3):
        (root / "a" / f"text_{i}.png").write_text("this is no PNG")


def test_corrupt_files_are_skipped_with_reasons(tmp_path, medtk_log):
    root = make_class_folder(tmp_path / "d", {"a": 50, "b": 50})
    _corrupt(root, 3)
    dataset = load_dataset(str(root))
    reasons = {s.item: s.reason for s in dataset.skipped}
    assert set(reasons) == {"a/truncated.png", "b/empty.jpg", "b/garbage.dcm"}
    assert reasons["b/empty.jpg"].startswith("not a readable image")
    assert "DICOM" in reasons["b/garbage.dcm"]
    assert str(tmp_path) not in " ".join(reasons.values())  # reasons name the item by its id only
    assert sum(len(s) for s in dataset.splits.values()) == 100
    assert describe(dataset).to_json()["skipped"][0]["item"] in reasons
    assert "checking 103 images: 103/103 done" in medtk_log.text


def test_too_many_bad_files_fail_with_a_count_and_examples(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 45, "b": 45})
    _corrupt(root, 10)
    with pytest.raises(DataError, match=r"d: 10 of 100 images \(10\.0%\) are unreadable, more than "
                                        r"max_bad_fraction=0\.05: a/.*\(not a readable image .*\) \.\.\.$"):
        load_dataset(str(root))
    assert len(load_dataset(str(root), max_bad_fraction=0.1).skipped) == 10


def test_dicom_header_identifiers_never_leave_the_file(tmp_path):
    from tests.data.datafiles import DICOM_IDENTIFIERS

    root = tmp_path / "d"
    for i in range(4):
        copy_dicom("CT_small.dcm", root / "ct" / f"{i}.dcm")
        copy_dicom("MR_small.dcm", root / "mr" / f"{i}.dcm")
    dataset = load_dataset(str(root), val_fraction=0.25, test_fraction=0.25)
    text = repr(describe(dataset)) + repr([s.ids for s in dataset.splits.values()])
    assert not any(identifier in text for identifier in DICOM_IDENTIFIERS)
