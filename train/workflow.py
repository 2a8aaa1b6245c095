"""`medtk train` end to end: data -> run folder -> model -> phases -> best model -> evaluation."""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from medtk.config import RunConfig, save_config
from medtk.data.staging import DecodedStage
from medtk.errors import ConfigError, DataError
from medtk.run import Run
from medtk.schema import Metrics, TrainingSummary
from medtk.schema.metrics import CalibrationDecision
from medtk.schema.training import InputSummary, PlacementSummary, PreciseBatchNormSummary, ScheduleSummary
from medtk.train.schedule import Schedule, plan_schedule
from medtk.train.state import TrainingState
from medtk.train.timings import EpochListener, TimingRecorder, host_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    run: Run
    best_val_auc: float | None
    epochs_run: int
    seconds: float
    metrics: Metrics
    schedule: Schedule


def prepare_run_folder(out: Path, resume: bool) -> Run:
    """A new run needs an empty folder; `--resume` needs the folder of an interrupted run.

    A medtk run folder that never finished an epoch (a bad option, a crash while decoding) holds nothing
    worth keeping and is replaced; anything else is refused, never deleted.
    """
    run = Run(Path(out))
    if resume:
        if not run.config_file.is_file():
            raise ConfigError(f"--resume: {out} holds no interrupted run (config.toml missing)")
        return run
    if run.root.exists() and any(run.root.iterdir()):
        if not _abandoned(run):
            raise ConfigError(f"--out {out}: folder exists and is not empty; pass --resume to continue it or choose a new folder")
        log.warning("--out %s: replacing a run folder that never finished its first epoch", out)
        import shutil

        shutil.rmtree(run.root)
    try:
        run.root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out {out}: cannot create the run folder ({error.strerror})") from None
    return run


def _abandoned(run: Run) -> bool:
    """A medtk run folder (config.toml) with no finished epoch and no model: nothing to lose."""
    if not run.config_file.is_file() or run.model_file.exists() or run.prepared_dir.exists():
        return False  # a model, or images decoded into prepared/: work to continue with --resume
    try:
        return int(TrainingState.load(run).epochs) == 0
    except (ValueError, TypeError, AttributeError):
        return False


def load_training_data(config: RunConfig, run: Run, reuse_split: bool, on_decoded=None):
    """The run's data, split (or its saved split, resuming); `on_decoded`: see `load_dataset`."""
    from medtk.data import load_dataset

    return load_dataset(
        config.data.src,
        seed=config.data.seed,
        val_fraction=config.data.val_fraction,
        test_fraction=config.data.test_fraction,
        max_bad_fraction=config.data.max_bad_fraction,
        split_file=run.split_file if reuse_split and run.split_file.is_file() else None,
        subset=config.data.subset or None,
        on_decoded=on_decoded,
    )


def _check_prepared_size(config: RunConfig) -> None:
    """A prepared dataset trains only a model of its own input size: checked before the run folder exists."""
    from medtk.data.prepared import is_prepared, open_prepared
    from medtk.train.prepared import check_matches

    if is_prepared(config.data.src):
        prepared = open_prepared(config.data.src)
        check_matches(prepared, config.model.input_size,
                      config.model.channels or prepared.manifest.preprocessing.channels)


def resolve_channels(config: RunConfig, dataset) -> int:
    """Grayscale data -> 1-channel models (3 channels cost the first conv only, not accuracy)."""
    if config.model.channels:
        return config.model.channels
    first = dataset.splits["train"].image(0)
    return 1 if first.ndim == 2 else 3


def train(config: RunConfig, out: Path, resume: bool = False, on_epoch: EpochListener | None = None) -> TrainOutcome:
    """Train into the run folder `out`; `on_epoch(timing, planned_epochs)` is called after each epoch
    (the demo estimates its remaining time from it)."""
    from medtk.clinical import resolve_finding
    from medtk.data import describe, resolve_source, save_split
    from medtk.train.backbones import get_backbone
    from medtk.train.evaluate import evaluate_run
    from medtk.train.fit import class_weights, fit_phases, plan_phases
    from medtk.train.head_folds import center_class_maps
    from medtk.train.model import ModelSpec, build_classifier, training_view
    from medtk.train.strategy import choose_placement
    from medtk.train.tfenv import keras
    from medtk.train.transfer import load_backbone_weights, resolve_weights

    started = time.perf_counter()
    if resume:
        config = Run(Path(out)).config() if Run(Path(out)).config_file.is_file() else config
    get_backbone(config.model.arch)  # an unknown name or weights source fails before anything is created
    weights = resolve_weights(config.model.weights)
    _check_prepared_size(config)
    run = prepare_run_folder(out, resume)
    if resume:
        log.info("resuming %s with its saved configuration", run.root)
    config.data.src = resolve_source(config.data.src)  # saved absolute: eval/compress/report work from anywhere
    k = keras()
    k.utils.set_random_seed(config.train.seed)
    decoded = None
    if resume and run.own_prepared(config.data.src):
        dataset = run.dataset()  # its finished RUN/prepared: the source is not read (nor checked) again
    else:
        decoded = DecodedStage(run.root, config.model.input_size)  # the check's pixels: each file decoded once
        dataset = load_training_data(config, run, reuse_split=resume, on_decoded=decoded.keep)
    for name in ("train", "val"):
        if len(dataset.splits[name]) == 0:
            raise DataError(f"{config.data.src}: the {name} split is empty")
    config.model.channels = resolve_channels(config, dataset)
    finding = resolve_finding(config.clinical.positive_class, dataset.class_names, dataset.finding)
    if finding is not None:
        config.clinical.positive_class = finding.name
        log.info("positive class (the finding every sensitivity is about): %s, from %s", finding.name, finding.origin)
    if not resume:
        save_split(dataset, run.split_file)
        run.write(run.data_file, describe(dataset))
        save_config(config, run.config_file)
    for item in dataset.skipped:
        log.warning("skipped %s: %s", item.item, item.reason)

    spec = ModelSpec(
        arch=config.model.arch,
        input_size=config.model.input_size,
        channels=config.model.channels,
        num_classes=len(dataset.class_names),
        dropout=config.model.dropout,
        weights=config.model.weights if weights.kind in ("none", "imagenet", "keras") else "none",
        batchnorm_momentum=config.model.batchnorm_momentum,
        output_stride=config.model.output_stride,
    )
    placement = choose_placement(config.train.strategy, config.train.mixed_precision, config.train.xla)
    recorder = TimingRecorder(run, host_summary(placement), on_epoch=on_epoch)
    batch = config.train.batch_size * placement.replicas
    with recorder.decoding(len(dataset.splits["train"]) + len(dataset.splits["val"])):
        inputs = _input_pipeline(config, spec, dataset, batch, run, decoded)
    if decoded is not None:
        decoded.close()
    dataset = inputs.dataset  # a folder or CSV source: its shards in RUN/prepared from here on
    y_train, y_val = dataset.splits["train"].labels, dataset.splits["val"].labels
    train_data = {
        "dataset": inputs.train,
        "class_weight": class_weights(y_train, spec.num_classes, config.train.class_weights),
        "images": inputs.batchnorm_sample,
        "count": len(y_train),
        "steps_per_epoch": inputs.steps_per_epoch,
    }
    val_data = inputs.val

    with placement.strategy.scope():
        model = build_classifier(spec)
        if weights.kind in ("run", "backbone"):
            loaded = load_backbone_weights(model, weights)
            log.info("loaded %d backbone layers (%d parameters) from %s", loaded.layers, loaded.parameters, loaded.source)
        view = training_view(model)
    schedule = plan_schedule(config, len(y_train), y_val, spec.num_classes, batch)
    phases = plan_phases(config, get_backbone(spec.arch).fine_tune_at, schedule)
    _log_plan(phases, placement, schedule)
    recorder.planned_epochs = sum(phase.epochs for phase in phases)
    result = fit_phases(model, view, phases, train_data, val_data, config, run, placement, schedule, recorder)
    with recorder.after("precise_batchnorm"), placement.strategy.scope():
        batchnorm = _precise_batchnorm(model, phases, inputs.batchnorm_images, config)
    if placement.mixed_precision != "float32":
        model = _float32_copy(model, spec)
    center_class_maps(model)  # probabilities unchanged; each CAM becomes its class's share of the decision
    with recorder.after("calibration"):
        calibration = _calibrate(model, inputs.val_images, y_val, config)
    with recorder.after("save"):
        _save_model(model, run.model_file)
    with recorder.after("evaluation"):
        metrics = evaluate_run(run, model=model, dataset=dataset, temperature=calibration.temperature,
                               calibration=calibration)
    outcome = TrainOutcome(run, result.best_val_auc, result.epochs_run, time.perf_counter() - started, metrics,
                           schedule)
    _write_summary(run, outcome, placement, calibration, batchnorm, inputs.summary)
    return outcome


@dataclass(frozen=True)
class _Inputs:
    """What training reads, either way: Keras' train/val datasets, images for BatchNorm and calibration."""

    train: object
    val: object
    batchnorm_sample: object  # fit's per-epoch pass: an array, or count -> batches
    batchnorm_images: object  # the final pass over the training images: an array or batches
    val_images: object  # calibration's predictions: an array or batches in the split's order
    summary: InputSummary
    dataset: object  # the run's data as read from here on (a folder or CSV source: from RUN/prepared)
    steps_per_epoch: int | None = None  # fit's, when the training stream repeats (several workers)


def _input_pipeline(config: RunConfig, spec, dataset, batch: int, run: Run, decoded: DecodedStage | None) -> _Inputs:
    """In memory or streamed. A folder or CSV source is first decoded once into RUN/prepared (from the
    check's pixels, `decoded`), which training and every later stage of the run read."""
    import math
    from functools import partial

    from medtk.data.prepared import is_prepared, open_prepared
    from medtk.train.pipeline import make_dataset, prepare_split
    from medtk.train.prepared import choose_pipeline, epoch_steps, manifest_digest, prepare_in_run, tf_dataset
    from medtk.train.strategy import worker_count

    prepared = open_prepared(config.data.src) if is_prepared(config.data.src) else None
    if prepared is None and dataset.source == str(run.prepared_dir):  # resumed: already read from RUN/prepared
        prepared = open_prepared(run.prepared_dir)
    elif prepared is None and dataset.splits["train"].files is not None:
        prepared = prepare_in_run(run.prepared_dir, dataset, spec.input_size, spec.channels, config.data.seed,
                                  decoded)
        dataset = run.dataset()
    choice = choose_pipeline(config, prepared, spec.channels,
                             images=len(dataset.splits["train"]) + len(dataset.splits["val"]))
    log.info("input pipeline: %s (%s)", choice.mode, choice.reason)
    summary = InputSummary(pipeline=choice.mode, reason=choice.reason,
                           prepared=str(prepared.root) if prepared else None,
                           manifest_sha256=manifest_digest(prepared) if prepared else None)
    y_train, y_val = dataset.splits["train"].labels, dataset.splits["val"].labels
    if choice.mode == "memory":
        x_train = prepare_split(dataset.splits["train"], spec.input_size, spec.channels)
        x_val = prepare_split(dataset.splits["val"], spec.input_size, spec.channels)
        return _Inputs(
            train=make_dataset(x_train, y_train, spec.num_classes, batch, True, config.augment, config.train.seed),
            val=make_dataset(x_val, y_val, spec.num_classes, batch, False),
            batchnorm_sample=x_train, batchnorm_images=x_train, val_images=x_val, summary=summary, dataset=dataset)
    for name in ("train", "val"):
        if len(dataset.splits[name]) != prepared.count(name):
            raise DataError(f"{prepared.root}: the {name} split has {len(dataset.splits[name])} items but its shards "
                            f"hold {prepared.count(name)}; stream only a prepared dataset's own split")
    workers = worker_count()
    stream = partial(tf_dataset, prepared, num_classes=spec.num_classes, seed=config.train.seed, workers=workers)
    plain = partial(stream, "train", batch_size=config.train.batch_size, training=False)
    return _Inputs(
        train=stream("train", batch_size=batch, training=True, augment=config.augment),
        val=stream("val", batch_size=batch, training=False),
        batchnorm_sample=lambda count: plain().take(math.ceil(count / config.train.batch_size)),
        batchnorm_images=plain(),
        val_images=stream("val", batch_size=batch, training=False),
        summary=summary,
        dataset=dataset,
        steps_per_epoch=epoch_steps(prepared.count("train"), batch, workers))


def _precise_batchnorm(model, phases, images, config: RunConfig) -> PreciseBatchNormSummary | None:
    """After a phase that trained BatchNorm, its moving statistics are recomputed over the training data
    (the momentum-averaged ones lag the weights in short runs); frozen BatchNorm layers are left alone."""
    from medtk.train.batchnorm import precise_batchnorm

    if not config.train.precise_batchnorm or all(phase.freeze_batchnorm for phase in phases):
        return None
    done = precise_batchnorm(model, images, batch_size=config.train.batch_size, seed=config.train.seed)
    log.info("precise BatchNorm: %d layers recomputed over %d training images", done.layers_updated, done.images)
    return PreciseBatchNormSummary(layers=done.layers_updated, images=done.images)


def _calibrate(model, x_val, y_val, config: RunConfig) -> CalibrationDecision:
    """Temperature scaling fitted on validation (NLL), folded into the `cam` layer (zero runtime cost)
    only where held-out folds of validation show it helps (`medtk.clinical.decide_temperature`)."""
    from medtk.clinical import decide_temperature
    from medtk.train.head_folds import fold_temperature
    from medtk.train.evaluate import predict_outputs

    if not config.clinical.calibrate:
        return CalibrationDecision(applied=False, temperature=1.0, fitted_temperature=None,
                                   reason="calibration off (clinical.calibrate = false)")
    _, logits = predict_outputs(model, x_val)
    decision = decide_temperature(logits, y_val, seed=config.data.seed)
    if decision.applied:
        fold_temperature(model, decision.temperature)
    log.info("calibration on %d validation images: %s", len(y_val), decision.reason)
    return decision


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


def _log_plan(phases, placement, schedule: Schedule) -> None:
    log.info("plan: %d optimizer steps per epoch, floor %d steps per run (train.min_steps)",
             schedule.steps_per_epoch, schedule.min_steps)
    log.info("plan: early stopping, LR reduction and the best checkpoint watch val AUC averaged with weight %g on "
             "the past; a rise counts above %.4f (half its standard error on this validation split); patience %d "
             "epochs (LR %d, reduced from epoch %d), early stopping from epoch %d of the last phase", schedule.smoothing,
             schedule.min_delta, schedule.patience, schedule.lr_patience, schedule.lr_start_epoch, schedule.floor_epochs)
    for warning in schedule.warnings:
        log.warning("plan: %s", warning)
    for phase in phases:
        where = "whole network" if phase.fine_tune_at == 0 else (
            "head only (backbone frozen)" if phase.fine_tune_at is None else f"from layer {phase.fine_tune_at}")
        log.info("plan: %s: %d epochs at lr %g, training %s", phase.name, phase.epochs, phase.learning_rate, where)
    log.info("placement: %s", json.dumps(placement.describe()))


def _write_summary(run: Run, outcome: TrainOutcome, placement, calibration: CalibrationDecision,
                   batchnorm: PreciseBatchNormSummary | None, inputs: InputSummary) -> None:
    from medtk import __version__
    from medtk.train.tfenv import tensorflow

    summary = TrainingSummary(
        best_val_auc=outcome.best_val_auc,
        epochs_run=outcome.epochs_run,
        seconds=round(outcome.seconds, 1),
        placement=PlacementSummary(**placement.describe()),
        versions={"medtk": __version__, "tensorflow": tensorflow().__version__, "python": platform.python_version()},
        temperature=calibration.temperature,
        calibration=calibration,
        precise_batchnorm=batchnorm,
        schedule=ScheduleSummary(**{k: v for k, v in asdict(outcome.schedule).items() if k != "warnings"}),
        warnings=outcome.schedule.warnings,
        input=inputs,
    )
    run.write(run.training_file, summary)

