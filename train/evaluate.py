"""`medtk eval RUN`: the float model's metrics on validation and test, with ROC and confusion plots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from medtk.io import atomic_write_json
from medtk.run import RunPaths


def predict_probs(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of the Keras model on prepared uint8 images (N, S, S, C)."""
    if len(images) == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), dtype=np.float32)
    probs, _ = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return probs


def evaluate_run(run: RunPaths, model=None, dataset=None, data_src: str | None = None) -> dict[str, Any]:
    """Evaluate the run's model on val and test; write metrics.json and plots; return the metrics.

    With `data_src` the model is evaluated on another source (every split it has) and the results go
    to `RUN/eval/<source>/` so the training metrics are kept.
    """
    from medtk.config import load_config
    from medtk.data import load_dataset
    from medtk.metrics import classification_metrics
    from medtk.plots import confusion_plot, roc_plot
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    model = model if model is not None else load_classifier(run.require_model())
    config = load_config(run.config) if run.config.is_file() else None
    if dataset is None:
        if data_src is not None:
            dataset = load_dataset(data_src, seed=config.data.seed if config else 0)
        else:
            dataset = load_dataset(config.data.src, seed=config.data.seed, split_file=run.split)
    out_dir, metrics_path = run.root, run.metrics
    if data_src is not None:
        out_dir = run.root / "eval" / _slug(data_src)
        metrics_path = out_dir / "metrics.json"
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    _check_classes(model, dataset)
    results: dict[str, Any] = {"class_names": list(dataset.class_names), "source": dataset.source}
    for name in ("val", "test"):
        split = dataset.splits.get(name)
        if split is None or len(split) == 0:
            continue
        probs = predict_probs(model, prepare_split(split, size, channels))
        results[name] = classification_metrics(split.labels, probs, dataset.class_names)
        plots = out_dir / "plots"
        roc_plot(split.labels, probs, dataset.class_names, plots / f"roc_{name}.png", f"ROC ({name})")
        confusion_plot(results[name]["confusion_matrix"], dataset.class_names, plots / f"confusion_{name}.png",
                       f"Confusion matrix ({name})")
    atomic_write_json(metrics_path, results)
    return results


def _check_classes(model, dataset) -> None:
    from medtk.errors import DataError

    outputs = int(model.outputs[0].shape[-1])
    if outputs != len(dataset.class_names):
        raise DataError(
            f"{dataset.source}: {len(dataset.class_names)} classes but the model predicts {outputs}"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text).name or text).strip("_") or "data"
