from __future__ import annotations

import numpy as np
import pytest
from tests.data.datafiles import copy_dicom, make_class_folder, random_image, write_image, write_monochrome1

from medtk.data import load_dataset
from medtk.errors import DataError


def test_class_folder_is_split_stratified(tmp_path):
    root = make_class_folder(tmp_path / "data", {"normal": 30, "pneumonia": 20})
    dataset = load_dataset(str(root), seed=1)
    assert dataset.class_names == ("normal", "pneumonia")
    assert dataset.split_origin == "stratified"
    assert dataset.counts() == {
        "train": {"normal": 21, "pneumonia": 14},
        "val": {"normal": 3, "pneumonia": 2},
        "test": {"normal": 6, "pneumonia": 4},
    }
    split = dataset.splits["train"]
    assert all(item.split("/")[0] == dataset.class_names[label] for item, label in zip(split.ids, split.labels))
    assert split.load(0).dtype == np.uint8


def test_mixed_formats_bit_depths_and_dicom_all_load(tmp_path):
    """PNG 8/16-bit, JPEG, TIFF 16-bit, BMP, gray and RGB, DICOM with and without a suffix, MONOCHROME1."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    write_image(root / "a" / "gray8.png", random_image(rng))
    write_image(root / "a" / "gray16.png", random_image(rng, dtype=np.uint16))
    write_image(root / "a" / "rgb.jpg", random_image(rng, shape=(20, 30, 3)))
    write_image(root / "a" / "deep" / "gray16.tif", random_image(rng, dtype=np.uint16))
    write_image(root / "b" / "rgb16.tiff", random_image(rng, shape=(16, 16, 3), dtype=np.uint16))
    write_image(root / "b" / "gray.bmp", random_image(rng))
    copy_dicom("CT_small.dcm", root / "b" / "ct.dcm")
    copy_dicom("MR_small.dcm", root / "b" / "mr_without_suffix")
    write_monochrome1(root / "b" / "mono1.dcm")
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / ".DS_Store").write_bytes(b"\0\1")
    dataset = load_dataset(str(root), val_fraction=0.0, test_fraction=0.0)
    train = dataset.splits["train"]
    assert sorted(train.ids) == sorted([
        "a/gray8.png", "a/gray16.png", "a/rgb.jpg", "a/deep/gray16.tif",
        "b/rgb16.tiff", "b/gray.bmp", "b/ct.dcm", "b/mr_without_suffix", "b/mono1.dcm",
    ])
    shapes = {item: train.load(i).shape for i, item in enumerate(train.ids)}
    assert shapes["a/rgb.jpg"] == (20, 30, 3) and shapes["b/ct.dcm"] == (128, 128)
    assert shapes["b/mr_without_suffix"] == (64, 64)
    assert all(train.load(i).dtype == np.uint8 for i in range(len(train)))
    assert dataset.skipped == []
    assert dataset.image_shapes["24x24"] == 4


def test_pre_split_folder_keeps_its_split(tmp_path):
    for split, n in (("train", 8), ("val", 3), ("test", 4)):
        make_class_folder(tmp_path / "d" / split, {"cat": n, "dog": n}, seed=n)
    dataset = load_dataset(str(tmp_path / "d"))
    assert dataset.split_origin == "given"
    assert {name: len(split) for name, split in dataset.splits.items()} == {"train": 16, "val": 6, "test": 8}
    assert dataset.splits["val"].ids[0] == "val/cat/cat_000.png"


def test_pre_split_folder_without_val_carves_it_from_train(tmp_path):
    make_class_folder(tmp_path / "d" / "train", {"cat": 20, "dog": 20})
    make_class_folder(tmp_path / "d" / "test", {"cat": 5, "dog": 5})
    dataset = load_dataset(str(tmp_path / "d"), val_fraction=0.25)
    assert dataset.counts()["val"] == {"cat": 5, "dog": 5}
    assert dataset.counts()["test"] == {"cat": 5, "dog": 5}
    assert all(item.startswith("train/") for item in dataset.splits["val"].ids)


def test_pre_split_folder_needs_test(tmp_path):
    make_class_folder(tmp_path / "d" / "train", {"cat": 2, "dog": 2})
    with pytest.raises(DataError, match=r"d: has train/ but no test/"):
        load_dataset(str(tmp_path / "d"))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no class subfolders found"):
        load_dataset(str(tmp_path / "empty"))


def test_folders_without_images(tmp_path):
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir()
    (tmp_path / "d" / "b" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"d: no images found in the class subfolders \(a, b\)"):
        load_dataset(str(tmp_path / "d"))


def test_single_class_folder(tmp_path):
    root = make_class_folder(tmp_path / "d", {"only": 5})
    with pytest.raises(DataError, match=r"d: only class 'only' found; a classifier needs at least two classes"):
        load_dataset(str(root))


def test_class_without_training_images_after_skipping(tmp_path):
    root = make_class_folder(tmp_path / "d", {"good": 40})
    (root / "bad").mkdir()
    (root / "bad" / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"d: no training images for class\(es\) bad .*skipping 1 unreadable"):
        load_dataset(str(root), max_bad_fraction=0.5)
