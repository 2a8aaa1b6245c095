"""`medtk demo`: train -> eval -> compress --int8 -> bench -> report on the embedded synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def demo(
    data: Annotated[Optional[str], typer.Option("--data", help="SRC to use instead of the embedded synthetic phantoms.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder to create (refused if it exists, unless --force).")] = Path("runs/demo"),
    quick: Annotated[bool, typer.Option("--quick", help="A much smaller configuration (smoke test, about a minute).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing run folder at --out.")] = False,
    max_auc_drop: Annotated[Optional[float], typer.Option("--max-auc-drop", help="Quality gate of the compression step: a variant losing more test AUC fails it [default: compress's].")] = None,
) -> None:
    """Run the whole pipeline with a small configuration and print where the report is.

    Exit 3, as `medtk compress --int8` would, only when no int8 variant passes every gate; a failing
    variant beside a passing one is a warning (the recommended one is what to deploy).
    """
    from dataclasses import replace

    from medtk.errors import QualityGateError
    from medtk.pipeline import DEMO, QUICK, run_pipeline

    settings = QUICK if quick else DEMO
    if data is not None:
        settings = replace(settings, data=data)
    result = run_pipeline(settings, out, force=force, max_auc_drop=max_auc_drop, echo=typer.echo)
    if result.verdict.failed:  # the one verdict: compress's exit code and the report's headline agree
        raise QualityGateError(f"quality gate failed: {result.verdict.summary}; report written")
    if result.verdict.level == "warning":  # a variant that fails beside the recommended one is a finding
        typer.echo(f"medtk: warning: {result.verdict.summary} (see the report)", err=True)
