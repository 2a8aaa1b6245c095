"""`medtk report RUN`: one self-contained HTML page (RUN/report.html) for clinicians and reviewers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def report(
    run: Annotated[Path, typer.Argument(help="Run folder made by `medtk train` (compress/bench results are used when present).")],
    positive_class: Annotated[Optional[str], typer.Option("--positive-class", help="Binary: check that the run's metrics are about this finding class.")] = None,
) -> None:
    """Write RUN/report.html: data, training curves, metrics, compression, latency, CAM gallery, model card."""
    from medtk.report import write_report

    result = write_report(run, positive_class=positive_class)
    typer.echo(f"quality gate: {result.verdict}; {result.gallery_cases} CAM cases; {result.seconds:.1f} s")
    typer.echo(f"wrote {result.path.resolve()}")
