"""`medtk eval RUN`: the float model's metrics on validation and test, with ROC and confusion plots.

Binary tasks: the operating point is chosen on validation by the run's rule (never on test) and
test is reported at that threshold, with bootstrap intervals; calibration is reported as ECE and
Brier before and after the temperature folded into the model at training time.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medtk.run import Run
from medtk.schema import Metrics
from medtk.schema.metrics import CalibrationDecision


def predict_outputs(model, images, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), logits (N, K)) of the Keras model on prepared uint8 images (N, S, S, C), or
    on a tf.data dataset of (images, labels) batches (the streaming pipeline), in its order.

    The logits are the CAM's mean over cells: the head is 1x1 conv `cam` -> average pooling -> softmax.
    """
    if not isinstance(images, np.ndarray):
        probs, cams = model.predict(images, verbose=0)
        return probs, cams.mean(axis=(1, 2))
    if len(images) == 0:
        empty = np.zeros((0, int(model.outputs[0].shape[-1])), dtype=np.float32)
        return empty, empty
    probs, cams = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return probs, cams.mean(axis=(1, 2))


EVAL_CHUNK = 2048  # images decoded and held at once while evaluating: memory bounded for any split size


def predict_split(model, split, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """`predict_outputs` over a whole split, decoded (or read from a prepared dataset) chunk by chunk."""
    from medtk.data.base import Split
    from medtk.train.pipeline import prepare_split

    outputs = []
    for start in range(0, max(len(split), 1), EVAL_CHUNK):
        stop = min(start + EVAL_CHUNK, len(split))
        part = Split(ids=split.ids[start:stop], labels=split.labels[start:stop],
                     load=lambda index, offset=start: split.load(offset + index))
        outputs.append(predict_outputs(model, prepare_split(part, size, channels)))
    return np.concatenate([p for p, _ in outputs]), np.concatenate([l for _, l in outputs])


def evaluate_run(run: Run, model=None, dataset=None, data_src: str | None = None,
                 temperature: float | None = None, positive_class: str | None = None,
                 calibration: CalibrationDecision | None = None) -> Metrics:
    """Evaluate the run's model on val and test; write metrics.json and plots; return the metrics.

    With `data_src` the model is evaluated on another source (every split it has) at the run's own
    operating point, and the results go to `RUN/eval/<source>/` so the training metrics are kept.
    `temperature`: the one folded into `model` (default: the run's training.json). `positive_class`
    replaces the run's finding class (binary tasks). `calibration`: why that temperature (default: the
    run's training.json), recorded in each split's `calibration`.
    """
    from medtk.clinical.calibration import softmax
    from medtk.clinical import resolve_finding, split_metrics
    from medtk.train.plots import confusion_plot, reliability_plot, roc_plot
    from medtk.train.model import load_classifier
    config = run.config()
    model = model if model is not None else load_classifier(run.require_model())
    if dataset is None:
        dataset = run.dataset(data_src)
    if temperature is None:
        training = run.training()
        temperature = training.temperature if training else 1.0
        calibration = calibration or (training.calibration if training else None)
    out_dir, metrics_path = run.root, run.metrics_file
    threshold = None
    if data_src is not None:
        out_dir = run.eval_dir(_slug(data_src))
        metrics_path = out_dir / "metrics.json"
        threshold = _run_threshold(run)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    _check_classes(model, dataset)
    finding = resolve_finding(positive_class or config.clinical.positive_class, dataset.class_names, dataset.finding)
    if finding is not None and threshold is not None and finding.name != config.clinical.positive_class:
        threshold = None  # the run's threshold is about its own finding class; choose afresh on validation
    rule = config.clinical.operating_point if finding is not None else None
    splits = {}
    for name in ("val", "test"):
        split = dataset.splits.get(name)
        if split is None or len(split) == 0:
            continue
        probs, logits = predict_split(model, split, size, channels)
        splits[name] = split_metrics(
            split.labels, probs, dataset.class_names, finding=finding,
            rule=rule if threshold is not None or name == "val" else None, threshold=threshold,
            logits=logits * temperature, temperature=temperature, calibration=calibration, chosen_here=name == "val",
            intervals_seed=config.data.seed if name == "test" else None,
        )
        if splits[name].operating_point is not None:
            threshold = splits[name].operating_point.threshold  # val's threshold applies to test
        plots = out_dir / "plots"
        point = splits[name].operating_point
        marker = (1 - point.specificity, point.sensitivity) if point and None not in (point.specificity, point.sensitivity) else None
        roc_plot(split.labels, probs, dataset.class_names, plots / f"roc_{name}.png", f"ROC ({name})",
                 positive_index=finding.index if finding else 1, operating_point=marker)
        if temperature != 1.0:
            reliability_plot(split.labels, softmax(logits * temperature), probs, plots / f"reliability_{name}.png",
                             f"Reliability ({name})")
        confusion_plot(splits[name].confusion_matrix, dataset.class_names, plots / f"confusion_{name}.png",
                       f"Confusion matrix ({name}, argmax)")
    metrics = Metrics(class_names=tuple(dataset.class_names), source=dataset.source, **splits)
    run.write(metrics_path, metrics)
    return metrics


def _run_threshold(run: Run) -> float | None:
    """The operating point chosen on the run's own validation split, if it has one."""
    metrics = run.metrics()
    point = metrics.val.operating_point if metrics and metrics.val else None
    return point.threshold if point else None


def _check_classes(model, dataset) -> None:
    from medtk.errors import DataError

    outputs = int(model.outputs[0].shape[-1])
    if outputs != len(dataset.class_names):
        raise DataError(
            f"{dataset.source}: {len(dataset.class_names)} classes but the model predicts {outputs}"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text).name or text).strip("_") or "data"
