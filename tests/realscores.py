"""Real classifier scores for the metric tests: logistic regression on PneumoniaMNIST pixels.

Not a good model (test AUC about 0.92), which is the point: its val/test logits have the class balance,
ties, shift and over-confidence of real outputs. Fitted once per session (about 2 s).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tests.conftest import shared_data_dir


@lru_cache(maxsize=1)
def pneumonia_logits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (logits (N, 2) with class 1 = pneumonia, integer labels (N,)) for val and test."""
    from sklearn.linear_model import LogisticRegression

    path = shared_data_dir() / "pneumoniamnist.npz"
    assert path.is_file(), f"{path} is missing: set MEDTK_DATA_DIR to the folder holding pneumoniamnist.npz"
    data = np.load(path)

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        images = data[f"{name}_images"]
        return images.reshape(len(images), -1) / 255.0, data[f"{name}_labels"].ravel().astype(np.int64)

    x_train, y_train = split("train")
    model = LogisticRegression(C=10.0, max_iter=300).fit(x_train, y_train)
    out = {}
    for name in ("val", "test"):
        x, y = split(name)
        margin = model.decision_function(x)
        out[name] = (np.stack([np.zeros_like(margin), margin], axis=1), y)
    return out
