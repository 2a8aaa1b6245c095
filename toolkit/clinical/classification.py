"""Threshold-free and argmax classification metrics (AUC, accuracy, F1, per class), by scikit-learn.

For two classes sensitivity is the recall of the positive (finding) class `positive_index` and
specificity the recall of the other, at argmax; `medtk.clinical.split` adds the operating point. For more
classes: macro one-vs-rest AUC and per-class numbers.
"""

from __future__ import annotations

import numpy as np

from medtk.schema.metrics import ClassMetrics, SplitMetrics


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...] | list[str], positive_index: int | None = None
) -> SplitMetrics:
    """Metrics of predicted probabilities `probs` (N, K) against integer labels `y_true` (N,).

    `positive_index`: the finding class of a binary task (default: index 1).
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    num_classes = probs.shape[1]
    y_pred = probs.argmax(axis=1)
    labels = list(range(num_classes))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        str(name): ClassMetrics(
            precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]), support=int(support[i]),
            auc=_one_vs_rest_auc(y_true, probs, i),
        )
        for i, name in enumerate(class_names)
    }
    if num_classes == 2:
        positive = 1 if positive_index is None else int(positive_index)
        sensitivity = float(recall[positive]) if support[positive] else None
        specificity = float(recall[1 - positive]) if support[1 - positive] else None
        positive_class: str | None = str(class_names[positive])
    else:
        sensitivity = float(np.mean(recall))  # macro recall
        specificity = float(np.mean([_specificity(matrix, i) for i in labels]))
        positive_class = None
    return SplitMetrics(
        n=int(len(y_true)),
        auc=_auc(y_true, probs, positive_index),
        accuracy=float(skm.accuracy_score(y_true, y_pred)),
        balanced_accuracy=float(skm.balanced_accuracy_score(y_true, y_pred)) if len(set(y_true)) > 1 else None,
        f1=float(skm.f1_score(y_true, y_pred, average="binary" if num_classes == 2 else "macro", zero_division=0)),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
        per_class=per_class,
        sensitivity=sensitivity,
        specificity=specificity,
        positive_class=positive_class,
        sensitivity_argmax=sensitivity if num_classes == 2 else None,
        specificity_argmax=specificity if num_classes == 2 else None,
    )


def _auc(y_true: np.ndarray, probs: np.ndarray, positive_index: int | None = None) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return None  # undefined with one class present
    if probs.shape[1] == 2:
        positive = 1 if positive_index is None else int(positive_index)
        return float(roc_auc_score(y_true == positive, probs[:, positive]))
    present = np.unique(y_true)
    if len(present) < probs.shape[1]:
        return float(np.mean([_one_vs_rest_auc(y_true, probs, i) for i in present]))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", average="macro"))


def _one_vs_rest_auc(y_true: np.ndarray, probs: np.ndarray, index: int) -> float | None:
    from sklearn.metrics import roc_auc_score

    positives = y_true == index
    if positives.all() or not positives.any():
        return None
    return float(roc_auc_score(positives, probs[:, index]))


def _specificity(matrix: np.ndarray, index: int) -> float:
    true_negatives = matrix.sum() - matrix[index, :].sum() - matrix[:, index].sum() + matrix[index, index]
    negatives = matrix.sum() - matrix[index, :].sum()
    return float(true_negatives / negatives) if negatives else 0.0
