from __future__ import annotations

import cv2
import numpy as np
import pytest

from medtk.data import load_dataset
from medtk.errors import DataError


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC (ties averaged), numpy only."""
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        ranks[scores == value] = ranks[scores == value].mean()
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def _all(dataset):
    images = np.concatenate([np.stack([s.load(i) for i in range(len(s))]) for s in dataset.splits.values()])
    masks = np.concatenate([np.stack([s.masks(i) for i in range(len(s))]) for s in dataset.splits.values()])
    labels = np.concatenate([s.labels for s in dataset.splits.values()])
    return images, masks, labels


def test_default_is_600_balanced_images_split_60_20_20(synthetic):
    assert synthetic.class_names == ("normal", "lesion")
    assert synthetic.source == "synthetic:600"
    assert synthetic.counts() == {
        "train": {"normal": 180, "lesion": 180},
        "val": {"normal": 60, "lesion": 60},
        "test": {"normal": 60, "lesion": 60},
    }
    image = synthetic.splits["train"].load(0)
    assert image.shape == (64, 64) and image.dtype == np.uint8


def test_content_is_deterministic_and_independent_of_the_split_seed(synthetic):
    again = load_dataset("synthetic", seed=5)
    for name in ("train", "test"):
        a, b = synthetic.splits[name], again.splits[name]
        assert a.ids == b.ids
        assert all(np.array_equal(a.load(i), b.load(i)) for i in range(0, len(a), 17))


def test_masks_mark_lesions_inside_the_image_only_for_lesion_images(synthetic):
    images, masks, labels = _all(synthetic)
    assert not masks[labels == 0].any()
    assert (masks[labels == 1].sum(axis=(1, 2)) >= 9).all()
    contrast = []
    for image, mask in zip(images[labels == 1].astype(float), masks[labels == 1]):
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
        contrast.append(image[mask].mean() - image[ring].mean())
    assert np.median(contrast) > 20  # the typical lesion is visible against its surroundings
    assert np.percentile(contrast, 5) < np.median(contrast) / 2  # and some are faint: not trivial


def test_no_global_shortcut_separates_the_classes(synthetic):
    """Whole-image statistics must not solve the task: the model has to find the blob."""
    images, _, labels = _all(synthetic)
    pixels = images.reshape(len(images), -1).astype(float)
    assert 0.35 < _auc(pixels.mean(axis=1), labels) < 0.65
    assert 0.35 < _auc(pixels.std(axis=1), labels) < 0.65
    assert _auc(pixels.max(axis=1), labels) < 0.85


def test_custom_count_and_bad_counts():
    dataset = load_dataset("synthetic:40")
    assert {name: len(s) for name, s in dataset.splits.items()} == {"train": 24, "val": 8, "test": 8}
    for spec in ("synthetic:5", "synthetic:abc", "synthetic:"):
        with pytest.raises(DataError, match=r"synthetic:\w*: expected an image count N from 20 to 100000"):
            load_dataset(spec)
