"""`medtk train`: fine-tune a backbone on a data source into a run folder (then evaluate it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def train(
    data: Annotated[Optional[str], typer.Option("--data", help="SRC: .npz, folder, CSV manifest, synthetic[:N], medmnist:NAME, or a prepared DATASET (medtk prepare).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder to create (or to continue with --resume).")] = Path("runs/latest"),
    arch: Annotated[Optional[str], typer.Option("--arch", help="Backbone name (resnet50, resnet101, mobilenetv2).")] = None,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Square model input size in pixels.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Fine-tuning epochs (phase two, or the only phase from scratch) [default: 20, more if --min-steps needs them].")] = None,
    min_steps: Annotated[Optional[int], typer.Option("--min-steps", help="Optimizer steps a run makes at least when --epochs is not given (0 = no floor) [default: 1000].")] = None,
    head_epochs: Annotated[Optional[int], typer.Option("--head-epochs", help="Frozen-backbone epochs (phase one).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Batch size per replica.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--lr", help="Learning rate of phase one / of training from scratch.")] = None,
    fine_tune_lr: Annotated[Optional[float], typer.Option("--fine-tune-lr", help="Learning rate of phase two.")] = None,
    fine_tune_at: Annotated[Optional[str], typer.Option("--fine-tune-at", help="First backbone layer (name or index) unfrozen in phase two.")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", help="none, imagenet, a medtk RUN folder (its backbone), or a weights FILE.")] = None,
    output_stride: Annotated[Optional[int], typer.Option("--output-stride", help="32, or 16 for a 2x finer CAM (last stage dilated) [default: 32].")] = None,
    batchnorm_momentum: Annotated[Optional[float], typer.Option("--batchnorm-momentum", help="BatchNorm moving-average momentum (0 = the backbone's own; 0.9 for short runs from scratch).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Spec file (TOML) with [data] [model] [augment] [train].")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for the split, initialisation and augmentation.")] = None,
    subset: Annotated[Optional[int], typer.Option("--subset", help="Use at most N images per split (smoke runs).")] = None,
    augment: Annotated[Optional[bool], typer.Option("--augment/--no-augment", help="On-the-fly augmentation.")] = None,
    flip: Annotated[Optional[bool], typer.Option("--flip/--no-flip", help="Random flips (off where laterality matters).")] = None,
    class_weights: Annotated[Optional[str], typer.Option("--class-weights", help="balanced (weight rare classes up) or none.")] = None,
    patience: Annotated[Optional[int], typer.Option("--patience", help="Early-stopping patience on smoothed validation AUC (raised to a tenth of the epochs) [default: 5].")] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", help="auto, default, mirrored, multiworker.")] = None,
    input_pipeline: Annotated[Optional[str], typer.Option("--input-pipeline", help="auto (stream when train + val would not fit in memory; a folder or CSV source is first decoded once into RUN/prepared), memory, stream.")] = None,
    xla: Annotated[Optional[str], typer.Option("--xla", help="auto (on with a GPU), on, off.")] = None,
    mixed_precision: Annotated[Optional[str], typer.Option("--mixed-precision", help="auto, off, float16, bfloat16.")] = None,
    precise_batchnorm: Annotated[Optional[bool], typer.Option("--precise-batchnorm/--no-precise-batchnorm", help="Recompute BatchNorm statistics over the training data where BatchNorm trains [default: on].")] = None,
    positive_class: Annotated[Optional[str], typer.Option("--positive-class", help="Binary: the finding class sensitivity is about [default: the data's finding, else the last class].")] = None,
    operating_point: Annotated[Optional[str], typer.Option("--operating-point", help="Binary decision rule chosen on validation: youden, sensitivity:X, specificity:X, threshold:T [default: youden].")] = None,
    calibrate: Annotated[Optional[bool], typer.Option("--calibrate/--no-calibrate", help="Fit a temperature on validation and fold it into the model [default: on].")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
) -> None:
    """Train a classifier (ResNet50 transfer learning by default) and evaluate it."""
    from medtk.config import load_config
    from medtk.errors import ConfigError
    from medtk.train.workflow import train as run_training

    if epochs is not None and epochs < 0:  # train.epochs = -1 is the configuration's "auto": leave --epochs out
        raise ConfigError(f"--epochs {epochs} is out of range (0 to 10000); leave it out for the automatic length")

    overrides = {
        "data": {"src": data, "seed": seed, "subset": subset},
        "model": {"arch": arch, "input_size": input_size, "weights": weights, "batchnorm_momentum": batchnorm_momentum,
                  "output_stride": output_stride},
        "augment": {"enabled": augment, "horizontal_flip": flip, "vertical_flip": flip},
        "train": {
            "epochs": epochs, "min_steps": min_steps, "head_epochs": head_epochs, "batch_size": batch_size, "learning_rate": learning_rate,
            "fine_tune_learning_rate": fine_tune_lr, "fine_tune_at": fine_tune_at, "patience": patience, "class_weights": class_weights,
            "strategy": strategy, "input_pipeline": input_pipeline, "mixed_precision": mixed_precision, "xla": xla, "seed": seed,
            "precise_batchnorm": precise_batchnorm,
        },
        "clinical": {"positive_class": positive_class, "operating_point": operating_point, "calibrate": calibrate},
    }
    from medtk.cli.summary import metrics_summary

    outcome = run_training(load_config(config, overrides), out, resume=resume)
    typer.echo(
        f"trained {outcome.run.root} in {outcome.seconds / 60:.1f} min ({outcome.epochs_run} epochs), "
        f"best smoothed val AUC {'n/a' if outcome.best_val_auc is None else f'{outcome.best_val_auc:.4f}'}"
    )
    typer.echo(metrics_summary(outcome.metrics))
    timings = outcome.run.timings()
    if timings is not None:
        from medtk.train.timings import summary_lines

        typer.echo(f"where the time went ({outcome.run.timings_file.name}):")
        for line in summary_lines(timings):
            typer.echo(f"  {line}")
