"""Classification metrics a clinician reads (AUC, sensitivity, specificity), computed by scikit-learn.

For two classes the positive class is index 1 (e.g. "pneumonia"): sensitivity is its recall,
specificity the recall of class 0. For more classes: macro one-vs-rest AUC and per-class numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Metrics of predicted probabilities `probs` (N, K) against integer labels `y_true` (N,)."""
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
    result: dict[str, Any] = {
        "n": int(len(y_true)),
        "auc": _auc(y_true, probs),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)) if len(set(y_true)) > 1 else None,
        "f1": float(skm.f1_score(y_true, y_pred, average="binary" if num_classes == 2 else "macro", zero_division=0)),
        "confusion_matrix": matrix.tolist(),
        "per_class": {
            str(name): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "auc": _one_vs_rest_auc(y_true, probs, i),
            }
            for i, name in enumerate(class_names)
        },
    }
    if num_classes == 2:
        tn, fp, fn, tp = matrix.ravel()
        result["sensitivity"] = float(tp / (tp + fn)) if tp + fn else None
        result["specificity"] = float(tn / (tn + fp)) if tn + fp else None
        result["positive_class"] = str(class_names[1])
    else:
        result["sensitivity"] = float(np.mean(recall))  # macro recall
        result["specificity"] = float(np.mean([_specificity(matrix, i) for i in labels]))
    return result


def _auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return None  # undefined with one class present
    if probs.shape[1] == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
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
