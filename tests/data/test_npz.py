from __future__ import annotations

import numpy as np
import pytest
from tests.data.datafiles import write_npz

from medtk.data import load_dataset
from medtk.data.npz import load_npz
from medtk.errors import DataError


def test_real_pneumoniamnist_keeps_the_official_split(pneumonia_npz):
    dataset = load_dataset(str(pneumonia_npz))
    assert dataset.class_names == ("normal", "pneumonia")
    assert dataset.split_origin == "given"
    assert dataset.counts() == {
        "train": {"normal": 1214, "pneumonia": 3494},
        "val": {"normal": 135, "pneumonia": 389},
        "test": {"normal": 234, "pneumonia": 390},
    }
    image = dataset.splits["test"].load(5)
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert dataset.splits["val"].ids[0] == "val[0]"
    assert dataset.image_shapes == {"28x28": 5856}


def test_unknown_file_name_gets_numbered_classes(tmp_path):
    catalog = load_npz(write_npz(tmp_path / "mine.npz", num_classes=3))
    assert catalog.class_names == ("0", "1", "2")


def test_official_file_name_gets_official_labels_and_rgb_images(tmp_path):
    path = write_npz(tmp_path / "bloodmnist_64.npz", num_classes=8, shape=(6, 6, 3))
    dataset = load_dataset(str(path))
    assert dataset.class_names[0] == "basophil" and len(dataset.class_names) == 8
    assert dataset.splits["train"].load(0).shape == (6, 6, 3)


def test_sixteen_bit_arrays_map_their_full_range_never_per_image(tmp_path):
    """Issue 10: per-image min-max made the same content map to other values in another image; 16-bit
    arrays now map their full range (65535 -> 255), the same for every image."""
    images = np.zeros((40, 4, 4), dtype=np.uint16)
    images[:, 0, 0] = 1000
    images[:, 1, 1] = 3000
    images[:, 2, 2] = 257 * 200  # an 8-bit value copied to 16 bits maps back exactly
    dataset = load_dataset(str(write_npz(tmp_path / "x.npz", train_images=images)))
    image = dataset.splits["train"].load(0)
    assert image.dtype == np.uint8 and image[0, 0] == 4 and image[1, 1] == 12 and image[2, 2] == 200
    assert image[3, 3] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"val_labels": np.zeros((9, 1), np.uint8)}, r"x\.npz: val_images has 10 images but val_labels has 9 labels"),
        ({"train_images": np.full((40, 8, 8), np.nan, np.float32)}, r"x\.npz: train_images contains NaN .* 40 images"),
        ({"test_labels": np.full((12, 1), -1, np.int64)}, r"x\.npz: test_labels has label -1, out of range"),
        ({"test_labels": np.full((12, 1), 0.5)}, r"x\.npz: test_labels must hold integer class indices"),
        ({"train_labels": np.zeros((40, 3), np.uint8)}, r"x\.npz: train_labels has shape \(40, 3\) \(multi-label\)"),
        ({"val_images": None}, r"x\.npz: missing keys val_images"),
        ({"train_images": np.zeros((40, 8), np.uint8)}, r"x\.npz: train_images has shape \(40, 8\)"),
        ({"train_images": np.zeros((40, 8, 8), bool)}, r"x\.npz: train_images has unsupported dtype bool"),
    ],
)
def test_bad_arrays_are_clear_errors(tmp_path, overrides, message):
    with pytest.raises(DataError, match=message):
        load_dataset(str(write_npz(tmp_path / "x.npz", **overrides)))


def test_label_beyond_the_official_classes_is_out_of_range(tmp_path):
    path = write_npz(tmp_path / "pneumoniamnist.npz", num_classes=3)
    with pytest.raises(DataError, match=r"pneumoniamnist\.npz: label 2 is out of range for the 2 classes"):
        load_dataset(str(path))


def test_single_class_file_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"one\.npz: only class '0' found; a classifier needs at least two"):
        load_dataset(str(write_npz(tmp_path / "one.npz", num_classes=1)))


def test_multi_label_medmnist_file_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"chestmnist\.npz: chestmnist is multi-label"):
        load_dataset(str(write_npz(tmp_path / "chestmnist.npz")))


def test_not_an_npz_file(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match=r"broken\.npz: not a readable \.npz file"):
        load_dataset(str(tmp_path / "broken.npz"))
    with pytest.raises(DataError, match=r"absent\.npz: no such \.npz file"):
        load_dataset(str(tmp_path / "absent.npz"))
