from __future__ import annotations

import csv

import numpy as np
import pytest
from tests.data.datafiles import make_class_folder, random_image, write_image, write_npz

from medtk.data import load_dataset, save_split
from medtk.errors import DataError


def _ids(dataset):
    return {name: list(split.ids) for name, split in dataset.splits.items()}


def test_round_trip_reproduces_the_splits_exactly(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 30, "b": 25})
    first = load_dataset(str(root), seed=11)
    save_split(first, tmp_path / "run" / "split.csv")
    with open(tmp_path / "run" / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["split", "id", "label", "patient_id"] and len(rows) == 55
    again = load_dataset(str(root), seed=999, split_file=tmp_path / "run" / "split.csv")
    assert again.split_origin == "file"
    assert _ids(again) == _ids(first)
    for name in first.splits:
        assert np.array_equal(again.splits[name].labels, first.splits[name].labels)


def test_split_file_of_a_subset_run_reloads_the_subset(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 30, "b": 30})
    first = load_dataset(str(root), subset=4)
    save_split(first, tmp_path / "split.csv")
    assert _ids(load_dataset(str(root), split_file=tmp_path / "split.csv")) == _ids(first)


def test_items_gone_from_the_data_fail(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 10, "b": 10})
    save_split(load_dataset(str(root)), tmp_path / "split.csv")
    (root / "a" / "a_003.png").unlink()
    with pytest.raises(DataError, match=r"split\.csv: 1 items of the split file are not in the data .*: a/a_003\.png"):
        load_dataset(str(root), split_file=tmp_path / "split.csv")


def test_relabelled_item_fails(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 10, "b": 10})
    save_split(load_dataset(str(root)), tmp_path / "split.csv")
    text = (tmp_path / "split.csv").read_text().replace("a/a_000.png,a", "a/a_000.png,b")
    (tmp_path / "split.csv").write_text(text)
    with pytest.raises(DataError, match=r"split\.csv:\d+: a/a_000\.png is labelled 'b' in the split file but 'a'"):
        load_dataset(str(root), split_file=tmp_path / "split.csv")


def test_patient_ids_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["path,label,patient_id"]
    for i in range(40):
        write_image(tmp_path / f"{i}.png", random_image(rng))
        lines.append(f"{i}.png,{'yes' if i % 2 else 'no'},patient-{i // 2}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    first = load_dataset(str(tmp_path / "m.csv"))
    save_split(first, tmp_path / "run" / "split.csv")
    again = load_dataset(str(tmp_path / "m.csv"), split_file=tmp_path / "run" / "split.csv")
    assert again.splits["test"].patient_ids == first.splits["test"].patient_ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("split,id\ntrain,x\n", r"bad\.csv: missing column\(s\) label"),
        ("split,id,label,patient_id\nholdout,train[0],0,\n", r"bad\.csv:2: split 'holdout' is not one of"),
    ],
)
def test_malformed_split_files(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(str(write_npz(tmp_path / "x.npz")), split_file=tmp_path / "bad.csv")
