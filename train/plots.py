"""A run's plots as PNG files (matplotlib, headless), TensorFlow-free.

ROC, reliability and confusion plots are what `medtk eval` (train/evaluate.py) writes to RUN/plots; the
report inlines those files and draws the training history (`history_plot`) itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    from medtk.io import atomic_write_bytes
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def roc_plot(y_true: np.ndarray, probs: np.ndarray, class_names, path: Path, title: str,
             positive_index: int = 1, operating_point: tuple[float, float] | None = None) -> None:
    """One-vs-rest ROC curves (the positive class only for two classes), with the operating point
    (1 - specificity, sensitivity) marked when there is one."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.2))
    indices = [positive_index] if probs.shape[1] == 2 else range(probs.shape[1])
    for index in indices:
        positives = np.asarray(y_true) == index
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, index])
        auc = roc_auc_score(positives, probs[:, index])
        axis.plot(fpr, tpr, label=f"{class_names[index]} (AUC {auc:.3f})")
    if operating_point is not None:
        axis.plot(*operating_point, marker="o", color="black", linestyle="none", label="operating point")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axis.set(xlabel="1 - specificity (false positive rate)", ylabel="sensitivity (true positive rate)", title=title)
    axis.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def reliability_plot(labels: np.ndarray, before: np.ndarray, after: np.ndarray, path: Path, title: str,
                     bins: int = 15) -> None:
    """Reliability diagram: mean top-label confidence vs accuracy per bin, before and after calibration."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.2))
    edges = np.linspace(0.0, 1.0, bins + 1)
    for probs, name, style in ((before, "before", "--"), (after, "after (temperature)", "-")):
        confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels)
        which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
        filled = [k for k in range(bins) if np.any(which == k)]
        axis.plot([confidence[which == k].mean() for k in filled], [correct[which == k].mean() for k in filled],
                  marker="o", linestyle=style, label=name)
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=0.8, label="perfect calibration")
    axis.set(xlabel="confidence (top-class probability)", ylabel="observed accuracy", xlim=(0, 1), ylim=(0, 1),
             title=title)
    axis.legend(loc="upper left", fontsize=8)
    _save(figure, path)


def confusion_plot(matrix, class_names, path: Path, title: str) -> None:
    plt = _pyplot()
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(4.2, 3.8))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        axis.text(column, row, str(value), ha="center", va="center", color=colour)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=30)
    axis.set_yticks(ticks, class_names)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    _save(figure, path)


def history_plot(history_csv: Path, path: Path) -> bool:
    """Loss and AUC per epoch from the CSV history; False when there is no history to plot."""
    import csv

    if not history_csv.is_file():
        return False
    rows: dict[int, dict] = {}
    with open(history_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("epoch", "").isdigit():
                rows[int(row["epoch"])] = row  # a resumed epoch's later row wins
    if not rows:
        return False
    epochs = sorted(rows)
    plt = _pyplot()
    figure, (loss_axis, auc_axis) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, axis in (("loss", loss_axis), ("auc", auc_axis)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [float(rows[e][prefix + key]) for e in epochs if rows[e].get(prefix + key)]
            if values:
                axis.plot(epochs[: len(values)], values, style, label=(prefix or "train_") + key)
        axis.set(xlabel="epoch", title=key)
        axis.legend(fontsize=8)
    _save(figure, path)
    return True
