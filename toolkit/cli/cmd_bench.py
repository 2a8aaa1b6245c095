"""`medtk bench`: latency, throughput and memory of .tflite (or .onnx) models on a device, here, or over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from medtk.runtime.bench import BenchReport


def bench(
    models: Annotated[list[Path], typer.Argument(help="One or more .tflite or .onnx models (the first is the baseline), or a RUN folder: its float32 and recommended variants.")],
    device: Annotated[Optional[str], typer.Option("--device", help="Device profile or alias (see `medtk devices`).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Interpreter threads [default: the profile's].")] = None,
    runs: Annotated[Optional[int], typer.Option("--runs", help="Timed runs per path [default: 50].")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Discarded runs before timing [default: 5].")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Image for the end-to-end path [default: a synthetic 512x512 PNG].")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write all results to this JSON file ('-' = stdout) [default for a RUN: RUN/bench.json, RUN/bench-<device>.json].")] = None,
    host: Annotated[Optional[str], typer.Option("--host", help="Measure on user@address over SSH (needs `pip install medtk` there).")] = None,
    ssh_port: Annotated[Optional[int], typer.Option("--ssh-port", help="SSH port of --host.")] = None,
    ssh_option: Annotated[Optional[list[str]], typer.Option("--ssh-option", help="Extra ssh -o Key=Value (repeatable).")] = None,
    remote_python: Annotated[str, typer.Option("--remote-python", help="Python on --host that has medtk.")] = "python3",
) -> None:
    """Measure init, first inference, steady-state latency (bare invoke and end-to-end predict) and peak RSS."""
    import json

    from medtk.errors import ConfigError
    from medtk.runtime.bench import BenchSettings, RemoteTarget, run_bench, write_report

    if host is None and (ssh_port is not None or ssh_option or remote_python != "python3"):
        raise ConfigError("--ssh-port, --ssh-option and --remote-python need --host user@address")
    remote = None
    if host is not None:
        remote = RemoteTarget(destination=host, port=ssh_port, options=tuple(ssh_option or ()), python=remote_python)
    models, json_out = _expand_runs(models, device, json_out)
    given = {"runs": runs, "warmup": warmup, "threads": threads, "image": image}
    settings = BenchSettings(**{key: value for key, value in given.items() if value is not None})
    report = run_bench(models, settings, device=device, remote=remote)
    to_stdout = json_out is not None and str(json_out) == "-"
    for note in report.notes:
        typer.echo(f"medtk: note: {note}", err=True)
    for result in report.results:
        check = result.memory_check
        if check and not check.ok:
            typer.echo(f"medtk: warning: {result.model}: {check.message}", err=True)
        if result.delegate_fallback:
            typer.echo(f"medtk: note: {result.model}: {result.delegate_fallback}; ran on the CPU", err=True)
    if to_stdout:
        typer.echo(json.dumps(report.to_json(), indent=1))
        return
    _print_tables(report)
    if json_out is not None:
        write_report(report, json_out)
        typer.echo(f"wrote {json_out}")


def _expand_runs(models: list[Path], device: str | None, json_out: Path | None) -> tuple[list[Path], Path | None]:
    """A RUN folder stands for what a user would deploy from it: float32 (the baseline) and the variant
    compress recommends. Benching one RUN writes into it, where the report looks, unless --json says
    otherwise."""
    from medtk.devices import resolve_profile
    from medtk.errors import ModelError
    from medtk.run import Run

    expanded: list[Path] = []
    for path in models:
        if not path.is_dir():
            expanded.append(path)
            continue
        run = Run(path)
        found = run.bench_models()
        if not found:
            raise ModelError(f"{path}: no exported model in this run folder (run `medtk compress {path}` first)")
        expanded.extend(model for model in found if model not in expanded)
    if json_out is None and len(models) == 1 and models[0].is_dir():
        json_out = Run(models[0]).bench_file_for(resolve_profile(device).profile.name if device else None)
    return expanded, json_out


def _print_tables(report: BenchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    for result in report.results:
        where = result.where
        title = f"{result.model} ({result.variant}) - {where.mode} {where.device or where.host or ''}".rstrip()
        table = Table(title=title, title_justify="left")
        for column in ("path", "first ms", "min", "mean", "std", "p50", "p90", "p99", "per s"):
            table.add_column(column, justify="left" if column == "path" else "right")
        for label, stats, first in (("bare invoke", result.bare, result.first_inference_ms),
                                    ("end-to-end predict", result.end_to_end, result.end_to_end_first_ms)):
            times = (stats.min_ms, stats.mean_ms, stats.std_ms, stats.p50_ms, stats.p90_ms, stats.p99_ms)
            table.add_row(label, f"{first:.2f}", *(f"{t:.2f}" for t in times), _number(stats.throughput_per_s, ".1f"))
        console.print(table)
        console.print(
            f"  size {result.size_bytes / 1e6:.2f} MB, {_macs(result.macs)} | init {result.init_ms:.1f} ms | "
            f"warm-up {result.warmup_runs} x {result.warmup_mean_ms:.2f} ms | peak RSS {result.rss_peak_mb:.0f} MB "
            f"(baseline {result.rss_baseline_mb:.0f} MB) | {result.backend}, delegate {result.delegate}, {result.threads} threads"
        )
        estimate = result.estimate
        if estimate:
            ref = estimate.reference
            console.print(
                f"  ESTIMATE for {estimate.device}: {estimate.estimated_ms:.1f} ms per inference "
                f"({'approximate, ' if estimate.approximate else ''}method {estimate.method}: "
                f"{ref.latency_ms:g} ms for {ref.model} {ref.input_size} ({ref.describe()}) x "
                f"{estimate.model_macs / 1e6:.1f}M / {ref.macs / 1e6:.0f}M MACs; source: {estimate.reference_source})"
            )
    if len(report.comparison) > 1:
        table = Table(title="comparison (bare invoke; speed-up vs the first model)", title_justify="left")
        columns = ("model", "variant", "where", "p50 ms", "p90 ms", "mean ms", "per s", "e2e p50", "size MB", "RSS MB", "speed-up", "device est. ms")
        for column in columns:
            table.add_column(column, justify="left" if column in ("model", "variant", "where") else "right")
        for row in report.comparison:
            table.add_row(
                row.model, row.variant, row.mode, f"{row.p50_ms:.2f}", f"{row.p90_ms:.2f}", f"{row.mean_ms:.2f}",
                _number(row.throughput_per_s, ".1f"), f"{row.end_to_end_p50_ms:.2f}", f"{row.size_mb:.2f}",
                f"{row.peak_rss_mb:.0f}", _number(row.speedup_vs_first, ".2f", "x"), _number(row.estimated_device_ms, ".1f"),
            )
        console.print(table)


def _number(value: float | None, spec: str, unit: str = "") -> str:
    """A table cell; "-" for a figure that was not measured or not measurable."""
    return "-" if value is None else f"{value:{spec}}{unit}"


def _macs(macs: int) -> str:
    return f"{macs / 1e6:.1f} M MACs" if macs else "MACs not counted (.onnx)"
