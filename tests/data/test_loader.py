from __future__ import annotations

import pytest
from tests.data.datafiles import make_class_folder

from medtk.data import load_dataset
from medtk.errors import ConfigError, DataError


@pytest.mark.parametrize("src", ["nowhere/at/all", "imagenet:cats"])
def test_unknown_source_lists_the_valid_forms(src):
    with pytest.raises(DataError, match=rf"^{src}: does not exist; expected a MedMNIST-layout \.npz file, .*"
                                        r"'synthetic' or 'synthetic:N', 'medmnist:NAME\[@SIZE\]'$"):
        load_dataset(src)


def test_a_plain_file_is_not_a_source(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: is not a supported data source; expected"):
        load_dataset(str(tmp_path / "notes.txt"))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"subset": 0}, ConfigError, r"subset=0 must be a positive number"),
        ({"max_bad_fraction": 1.5}, ConfigError, r"max_bad_fraction=1\.5 is out of range"),
        ({"val_fraction": 0.9}, ConfigError, r"leaves nothing to train on"),
    ],
)
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        load_dataset("synthetic:20", **options)


def test_subset_caps_every_split_keeping_both_classes(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 40, "b": 20})
    dataset = load_dataset(str(root), subset=5, seed=2)
    assert {name: len(s) for name, s in dataset.splits.items()} == {"train": 5, "val": 5, "test": 5}
    assert all(set(s.labels.tolist()) == {0, 1} for s in dataset.splits.values())
    again = load_dataset(str(root), subset=5, seed=2)
    assert dataset.splits["train"].ids == again.splits["train"].ids


def test_medtk_data_needs_neither_tensorflow_nor_scikit_learn():
    """predict/report use medtk.data in the base install: no TF, no scikit-learn behind it."""
    import subprocess
    import sys

    code = ("import sys, medtk.data; medtk.data.load_dataset('synthetic:20'); "
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'sklearn', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
