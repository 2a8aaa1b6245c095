"""`medtk eval RUN`: metrics of the trained float model on validation and test.

`medtk eval RESULTS` (a results folder of `medtk predict MODEL --data SRC --out RESULTS`): the deployed
model on those labelled rows, at its own threshold (medtk.batch.evaluate), printed the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def eval_run(
    run: Annotated[Path, typer.Argument(help="Run folder made by `medtk train`, or a results folder of `medtk predict --data`.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Evaluate on another source instead of the run's own splits.")] = None,
    positive_class: Annotated[Optional[str], typer.Option("--positive-class", help="Binary: the finding class [default: the run's].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a run: AUC, accuracy, sensitivity/specificity at the operating point with CIs, calibration."""
    from medtk.batch.store import is_results
    from medtk.cli.summary import metrics_summary

    if is_results(run):
        _eval_results(run, data, positive_class, as_json)
        return
    from medtk.run import Run
    from medtk.train.evaluate import evaluate_run

    folder = Run(run)
    folder.require_model()
    metrics = evaluate_run(folder, data_src=data, positive_class=positive_class)
    if as_json:
        typer.echo(json.dumps(metrics.to_json(), indent=2))
        return
    typer.echo(metrics_summary(metrics))


def _eval_results(results: Path, data: str | None, positive_class: str | None, as_json: bool) -> None:
    """The deployed model on a batch job's rows: its own finding and threshold, nothing re-chosen."""
    from medtk.batch.evaluate import evaluate_results
    from medtk.cli.summary import metrics_summary
    from medtk.errors import ConfigError

    for name, value in (("--data", data), ("--positive-class", positive_class)):
        if value is not None:
            raise ConfigError(f"{name}: not used with a results folder ({results}): the rows and the model's "
                              "metadata fix the data and the finding")
    evaluation = evaluate_results(results)
    c = evaluation.coverage
    typer.echo(f"{results}: {c.evaluated} of {c.rows} rows evaluated ({c.errors} with an error, {c.unlabelled} "
               f"unlabelled){'' if c.complete else '; the job did not finish'}", err=True)
    if as_json:
        typer.echo(json.dumps(evaluation.metrics.to_json(), indent=2))
        return
    typer.echo(metrics_summary(evaluation.metrics))
