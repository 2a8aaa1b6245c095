"""Stratified train/val/test splits in numpy, grouped by patient when patient ids are known.

numpy only (no scikit-learn) because `medtk.data` must work in the base install. When patient ids
are given, whole patients are assigned to splits, so images of one patient never appear in two
splits (leakage inflates test metrics); class balance is then kept approximately by a greedy rule.
"""

from __future__ import annotations

import numpy as np

from medtk.data.base import SPLITS
from medtk.errors import ConfigError


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}={value!r} is out of range; expected 0 <= {name} < 1")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction:g} leaves nothing to train on; "
            "expected a sum below 1"
        )


def split_indices(
    labels: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    groups: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Indices (sorted) of each split; stratified by label, and grouped by `groups` when given."""
    check_fractions(val_fraction, test_fraction)
    labels = np.asarray(labels, dtype=np.int64)
    fractions = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])
    rng = np.random.default_rng(seed)
    if groups is None:
        assignment = _stratified(labels, fractions, rng)
    else:
        assignment = _grouped(labels, np.asarray(groups, dtype=object), fractions, rng)
    return {name: np.flatnonzero(assignment == k) for k, name in enumerate(SPLITS)}


def _stratified(labels: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per class: shuffle, then cut at the rounded fractions (test and val first, train keeps the rest)."""
    assignment = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(int(round(len(members) * fractions[2])), len(members) - 1)
        n_val = min(int(round(len(members) * fractions[1])), len(members) - 1 - n_test)  # train keeps >= 1
        assignment[members[:n_test]] = 2
        assignment[members[n_test : n_test + n_val]] = 1
    return assignment


def _grouped(
    labels: np.ndarray, groups: np.ndarray, fractions: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Greedy: largest patients first, each to the split whose class counts fall furthest below target."""
    names, group_of = np.unique(groups, return_inverse=True)
    num_classes = int(labels.max()) + 1
    per_group = np.zeros((len(names), num_classes), dtype=np.float64)
    np.add.at(per_group, (group_of, labels), 1.0)
    targets = fractions[:, None] * per_group.sum(axis=0)[None, :]  # (3, K)
    current = np.zeros_like(targets)
    order = rng.permutation(len(names))
    order = order[np.argsort(-per_group[order].sum(axis=1), kind="stable")]  # big groups first, ties random
    split_of_group = np.empty(len(names), dtype=np.int64)
    for g in order:
        # cost of adding group g to each split = increase in squared distance to that split's target
        after = current + per_group[g][None, :]
        cost = ((after - targets) ** 2).sum(axis=1) - ((current - targets) ** 2).sum(axis=1)
        cost[fractions == 0] = np.inf
        best = int(np.argmin(cost))
        split_of_group[g] = best
        current[best] += per_group[g]
    return split_of_group[group_of]


def subset_indices(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` indices (sorted), class proportions kept, at least one per class when possible."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts * limit / len(labels)).astype(np.int64)
    if limit >= len(classes):
        quota = np.maximum(quota, 1)
    # hand out what rounding left over to the classes with the largest remainders
    remainder = counts * limit / len(labels) - np.floor(counts * limit / len(labels))
    for k in np.argsort(-remainder, kind="stable"):
        if quota.sum() >= limit:
            break
        if quota[k] < counts[k]:
            quota[k] += 1
    while quota.sum() > limit:  # the at-least-one rule overshot: trim the biggest quota
        quota[int(np.argmax(quota))] -= 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))
