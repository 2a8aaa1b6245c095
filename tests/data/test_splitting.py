from __future__ import annotations

import numpy as np
import pytest

from medtk.data.splitting import split_indices, subset_indices
from medtk.errors import ConfigError


def _labels(counts):
    return np.concatenate([np.full(n, k) for k, n in enumerate(counts)])


def test_stratified_split_keeps_class_ratios_and_covers_every_item():
    labels = _labels([300, 700])
    parts = split_indices(labels, seed=0, val_fraction=0.1, test_fraction=0.2)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(1000))
    assert {name: np.bincount(labels[idx]).tolist() for name, idx in parts.items()} == {
        "train": [210, 490], "val": [30, 70], "test": [60, 140],
    }


def test_split_is_deterministic_by_seed():
    labels = _labels([50, 80, 30])
    first = split_indices(labels, seed=7, val_fraction=0.1, test_fraction=0.2)
    again = split_indices(labels, seed=7, val_fraction=0.1, test_fraction=0.2)
    other = split_indices(labels, seed=8, val_fraction=0.1, test_fraction=0.2)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])


def test_tiny_class_keeps_a_training_item():
    labels = _labels([100, 2])
    parts = split_indices(labels, seed=0, val_fraction=0.3, test_fraction=0.4)
    assert (labels[parts["train"]] == 1).sum() >= 1


@pytest.mark.parametrize("seed", range(25))
def test_grouped_split_never_puts_one_patient_in_two_splits(seed):
    """Property: on random manifests (patients with 1-12 images, mixed labels) no patient leaks."""
    rng = np.random.default_rng(seed)
    patients, labels = [], []
    for p in range(rng.integers(20, 120)):
        sick = rng.random() < rng.uniform(0.2, 0.6)
        for _ in range(rng.integers(1, 13)):
            patients.append(f"p{p}")
            labels.append(int(sick) if rng.random() < 0.9 else int(not sick))
    labels = np.array(labels)
    parts = split_indices(labels, seed=seed, val_fraction=0.15, test_fraction=0.2, groups=patients)
    owner = {}
    for name, idx in parts.items():
        for i in idx:
            assert owner.setdefault(patients[i], name) == name, f"patient {patients[i]} in two splits"
    assert sum(len(idx) for idx in parts.values()) == len(labels)


def test_grouped_split_balances_classes_approximately():
    rng = np.random.default_rng(3)
    patients = [f"p{i // 3}" for i in range(1500)]  # 500 patients, 3 images each
    labels = np.repeat(rng.random(500) < 0.3, 3).astype(int)
    parts = split_indices(labels, seed=0, val_fraction=0.1, test_fraction=0.2, groups=patients)
    for name, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        counts = np.bincount(labels[parts[name]], minlength=2)
        expected = fraction * np.bincount(labels)
        assert np.all(np.abs(counts - expected) <= 0.05 * np.bincount(labels) + 3), (name, counts, expected)


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [(-0.1, 0.2, "val_fraction=-0.1 is out of range"), (0.1, 1.0, "test_fraction=1.0 is out of range"),
     (0.5, 0.5, "leaves nothing to train on")],
)
def test_bad_fractions_are_config_errors(val, test, message):
    with pytest.raises(ConfigError, match=message):
        split_indices(np.array([0, 1]), seed=0, val_fraction=val, test_fraction=test)


def test_subset_is_stratified_seeded_and_bounded():
    labels = _labels([90, 10])
    chosen = subset_indices(labels, 20, seed=1)
    assert len(chosen) == 20
    assert np.bincount(labels[chosen]).tolist() == [18, 2]
    assert np.array_equal(chosen, subset_indices(labels, 20, seed=1))
    assert np.bincount(labels[subset_indices(_labels([99, 1]), 5, seed=0)]).tolist() == [4, 1]
    assert len(subset_indices(labels, 500, seed=0)) == 100
