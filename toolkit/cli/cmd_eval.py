"""`medtk eval RUN`: metrics of the trained float model on validation and test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def eval_run(
    run: Annotated[Path, typer.Argument(help="Run folder made by `medtk train`.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Evaluate on another source instead of the run's own splits.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a run: AUC, accuracy, sensitivity, specificity, F1, confusion matrix, per class."""
    from medtk.run import Run
    from medtk.train.evaluate import evaluate_run

    folder = Run(run)
    folder.require_model()
    metrics = evaluate_run(folder, data_src=data)
    if as_json:
        typer.echo(json.dumps(metrics.to_json(), indent=2))
        return
    typer.echo(f"{'split':<6} {'n':>6} {'AUC':>7} {'acc':>7} {'sens':>7} {'spec':>7} {'F1':>7}")
    for name in ("val", "test"):
        split = metrics.split(name)
        if split is not None:
            cells = (split.auc, split.accuracy, split.sensitivity, split.specificity, split.f1)
            typer.echo(f"{name:<6} {split.n:>6} " + " ".join("    n/a" if v is None else f"{v:7.4f}" for v in cells))
