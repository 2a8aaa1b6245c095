"""`medtk train` end to end: data -> run folder -> model -> phases -> best model -> evaluation."""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from medtk.config import RunConfig, load_config, save_config
from medtk.errors import ConfigError, DataError
from medtk.io import atomic_write_json
from medtk.run import RunPaths


@dataclass(frozen=True)
class TrainOutcome:
    run: RunPaths
    best_val_auc: float
    epochs_run: int
    seconds: float
    metrics: dict


def prepare_run_folder(out: Path, resume: bool) -> RunPaths:
    """A new run needs an empty folder; `--resume` needs the folder of an interrupted run."""
    run = RunPaths(Path(out))
    if resume:
        if not run.config.is_file():
            raise ConfigError(f"--resume: {out} holds no interrupted run (config.toml missing)")
        return run
    if run.root.exists() and any(run.root.iterdir()):
        raise ConfigError(f"--out {out}: folder exists and is not empty; pass --resume to continue it or choose a new folder")
    try:
        run.root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out {out}: cannot create the run folder ({error.strerror})") from None
    return run


def load_training_data(config: RunConfig, run: RunPaths, reuse_split: bool):
    from medtk.data import load_dataset

    return load_dataset(
        config.data.src,
        seed=config.data.seed,
        val_fraction=config.data.val_fraction,
        test_fraction=config.data.test_fraction,
        max_bad_fraction=config.data.max_bad_fraction,
        split_file=run.split if reuse_split and run.split.is_file() else None,
        subset=config.data.subset or None,
    )


def resolve_channels(config: RunConfig, dataset) -> int:
    """Grayscale data -> 1-channel models (3 channels cost the first conv only, not accuracy)."""
    if config.model.channels:
        return config.model.channels
    first = dataset.splits["train"].image(0)
    return 1 if first.ndim == 2 else 3


def train(config: RunConfig, out: Path, resume: bool = False) -> TrainOutcome:
    from medtk.data import describe, save_split
    from medtk.train.backbones import get_backbone
    from medtk.train.evaluate import evaluate_run
    from medtk.train.fit import class_weights, fit_phases, plan_phases
    from medtk.train.model import ModelSpec, build_classifier, training_view
    from medtk.train.pipeline import make_dataset, prepare_split
    from medtk.train.strategy import choose_placement
    from medtk.train.tfenv import keras

    started = time.perf_counter()
    run = prepare_run_folder(out, resume)
    if resume:
        config = load_config(run.config)
        print(f"resuming {run.root} with its saved configuration", file=sys.stderr)
    get_backbone(config.model.arch)  # an unknown name fails before data loading
    k = keras()
    k.utils.set_random_seed(config.train.seed)
    dataset = load_training_data(config, run, reuse_split=resume)
    for name in ("train", "val"):
        if len(dataset.splits[name]) == 0:
            raise DataError(f"{config.data.src}: the {name} split is empty")
    config.model.channels = resolve_channels(config, dataset)
    if not resume:
        save_split(dataset, run.split)
        atomic_write_json(run.data_summary, describe(dataset))
        save_config(config, run.config)
    for item in dataset.skipped:
        print(f"skipped {item.item}: {item.reason}", file=sys.stderr)

    spec = ModelSpec(
        arch=config.model.arch,
        input_size=config.model.input_size,
        channels=config.model.channels,
        num_classes=len(dataset.class_names),
        dropout=config.model.dropout,
        weights=config.model.weights,
        batchnorm_momentum=config.model.batchnorm_momentum,
    )
    placement = choose_placement(config.train.strategy, config.train.mixed_precision, config.train.xla)
    print(f"decoding {sum(len(s) for s in dataset.splits.values())} images at {spec.input_size}px", file=sys.stderr)
    x_train = prepare_split(dataset.splits["train"], spec.input_size, spec.channels)
    x_val = prepare_split(dataset.splits["val"], spec.input_size, spec.channels)
    y_train, y_val = dataset.splits["train"].labels, dataset.splits["val"].labels
    batch = config.train.batch_size * placement.replicas
    train_data = {
        "dataset": make_dataset(x_train, y_train, spec.num_classes, batch, True, config.augment, config.train.seed),
        "class_weight": class_weights(y_train, spec.num_classes, config.train.class_weights),
    }
    val_data = make_dataset(x_val, y_val, spec.num_classes, batch, False)

    with placement.strategy.scope():
        model = build_classifier(spec)
        view = training_view(model)
    phases = plan_phases(config, get_backbone(spec.arch).fine_tune_at)
    _write_plan(run, config, placement, phases, spec)
    result = fit_phases(model, view, phases, train_data, val_data, config, run, placement)
    if placement.mixed_precision != "float32":
        model = _float32_copy(model, spec)
    _save_model(model, run.model)
    metrics = evaluate_run(run, model=model, dataset=dataset)
    outcome = TrainOutcome(run, result.best_val_auc, result.epochs_run, time.perf_counter() - started, metrics)
    _write_summary(run, outcome, placement)
    return outcome


def _float32_copy(model, spec):
    """The deployable model is float32 whatever the training precision (variables are float32 anyway)."""
    from medtk.train.model import build_classifier
    from medtk.train.tfenv import keras

    keras().mixed_precision.set_global_policy("float32")
    copy = build_classifier(replace(spec, weights="none"))
    copy.set_weights(model.get_weights())
    return copy


def _save_model(model, path: Path) -> None:
    """Save the float model atomically (Keras needs the `.keras` suffix on the temporary name)."""
    import os

    temporary = path.with_name(".model.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _write_plan(run: RunPaths, config: RunConfig, placement, phases, spec) -> None:
    for phase in phases:
        where = "whole network" if phase.fine_tune_at == 0 else (
            "head only (backbone frozen)" if phase.fine_tune_at is None else f"from layer {phase.fine_tune_at}")
        print(f"plan: {phase.name}: {phase.epochs} epochs at lr {phase.learning_rate:g}, training {where}",
              file=sys.stderr)
    print(f"placement: {json.dumps(placement.describe())}", file=sys.stderr)


def _write_summary(run: RunPaths, outcome: TrainOutcome, placement) -> None:
    from medtk import __version__
    from medtk.train.tfenv import tensorflow

    atomic_write_json(
        run.training_summary,
        {
            "best_val_auc": outcome.best_val_auc,
            "epochs_run": outcome.epochs_run,
            "seconds": round(outcome.seconds, 1),
            "placement": placement.describe(),
            "versions": {
                "medtk": __version__,
                "tensorflow": tensorflow().__version__,
                "python": platform.python_version(),
            },
        },
    )

