"""`medtk eval RUN`: metrics of the trained float model on validation and test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def eval_run(
    run: Annotated[Path, typer.Argument(help="Run folder made by `medtk train`.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Evaluate on another source instead of the run's own splits.")] = None,
    positive_class: Annotated[Optional[str], typer.Option("--positive-class", help="Binary: the finding class [default: the run's].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a run: AUC, accuracy, sensitivity/specificity at the operating point with CIs, calibration."""
    from medtk.cli.summary import metrics_summary
    from medtk.run import Run
    from medtk.train.evaluate import evaluate_run

    folder = Run(run)
    folder.require_model()
    metrics = evaluate_run(folder, data_src=data, positive_class=positive_class)
    if as_json:
        typer.echo(json.dumps(metrics.to_json(), indent=2))
        return
    typer.echo(metrics_summary(metrics))
