"""The whole pipeline on one data source: train -> eval -> compress --int8 -> bench -> report.

Each stage runs through its Python API and is announced as a numbered step with its wall time; what
the steps say goes to `echo` (the CLI passes the terminal, a library caller gets log lines). `medtk
demo` runs it with the `DEMO` or `QUICK` settings; anything else that wants the full path reuses
`run_pipeline`.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from medtk.config import ModelConfig, RunConfig
from medtk.compress.verdict import Verdict, compress_verdict
from medtk.errors import ConfigError, MedtkError, QualityGateError
from medtk.run import Run
from medtk.schema import SplitMetrics
from medtk.schema.timings import EpochTimings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineSettings:
    data: str
    arch: str
    input_size: int
    epochs: int
    batch_size: int
    augment: bool
    batchnorm_momentum: float
    prune_epochs: int
    qat_epochs: int
    calibration: int
    bench_runs: int
    bench_warmup: int
    output_stride: int = ModelConfig.output_stride


# The demo favours CAMs that point at the lesions over speed: output stride 16 at 96 px (a 6 x 6 CAM); the
# default augmentation, which localises far better but learns more slowly, hence 20 epochs; 1200 phantoms,
# which localise better than 600; the backbone's own BatchNorm momentum, since precise BatchNorm recomputes
# the statistics the moving averages lag behind (the runs: benchmarks/RESULTS.md, "Notes moved from code").
# No pruning or QAT (`prune_epochs` / `qat_epochs` 0): on this model post-training int8 is within 0.001 AUC of
# float32 and points where it does, while 4 pruning + 1 QAT epochs cost more minutes than the rest of compress
# and moved the CAM's peak off the lesion (pointing game 0.42; RESULTS, "The demo in minutes").
DEMO = PipelineSettings(data="synthetic:1200", arch="resnet50", input_size=96, epochs=20, batch_size=16, augment=True,
                        batchnorm_momentum=0.0, output_stride=16,
                        prune_epochs=0, qat_epochs=0, calibration=100, bench_runs=30, bench_warmup=3)
# The steps after training cost about the pruning and QAT epochs plus this many training epochs' worth: on the
# demo of benchmarks/RESULTS.md ("The demo in minutes": float32, oneDNN at AVX2, 30.7 min) the epochs took a
# median 69 s, and what came after them (final BatchNorm, calibration, eval, compress, bench, explain and report)
# 5.9 min, i.e. 5 epochs.
AFTER_TRAINING_EPOCHS = 5
QUICK = PipelineSettings(data="synthetic:120", arch="mobilenetv2", input_size=32, epochs=1, batch_size=16, augment=False,
                         batchnorm_momentum=0.0,
                         prune_epochs=1, qat_epochs=1, calibration=16, bench_runs=5, bench_warmup=1)


@dataclass(frozen=True)
class PipelineResult:
    run: Run
    report: Path
    verdict: Verdict  # the same one compress's exit code and the report's headline show
    seconds: float

    @property
    def recommended(self) -> str | None:
        return self.verdict.recommended


def prepare_output(out: Path, force: bool) -> None:
    """Never overwrite silently: an existing non-empty folder needs --force, and only a run folder is replaced."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not force:
        raise ConfigError(f"--out {out}: folder exists and is not empty; choose another --out or pass --force to replace it")
    if not Run(out).config_file.is_file():
        raise ConfigError(f"--out {out}: --force replaces only a medtk run folder (no config.toml there); choose another --out")
    shutil.rmtree(out)


def training_config(settings: PipelineSettings) -> RunConfig:
    """The training configuration of `settings` (benchmarks/train_phases.py times the demo's with it)."""
    from medtk.config import load_config

    return load_config(None, {
        "data": {"src": settings.data},
        "model": {"arch": settings.arch, "input_size": settings.input_size, "weights": "none",
                  "batchnorm_momentum": settings.batchnorm_momentum, "output_stride": settings.output_stride},
        "augment": {"enabled": settings.augment},
        # The demo's schedule is its own measured one (RESULTS), not the step floor meant for unknown data.
        "train": {"epochs": settings.epochs, "min_steps": 0, "batch_size": settings.batch_size,
                  "patience": settings.epochs},
    })


def run_pipeline(settings: PipelineSettings, out: Path, *, force: bool = False, max_auc_drop: float | None = None,
                 echo: Callable[[str], None] = log.info) -> PipelineResult:
    from medtk.train.workflow import train

    prepare_output(out, force)
    run = Run(out)
    started = time.perf_counter()
    step = _Steps(echo, total=6)

    config = training_config(settings)
    with step(f"train {settings.arch} at {settings.input_size} px, {settings.epochs} epochs on {settings.data}"):
        outcome = train(config, out, on_epoch=_RemainingTime(echo, settings))
        best = "n/a" if outcome.best_val_auc is None else f"{outcome.best_val_auc:.4f}"
        step.result(f"best val AUC {best}, {outcome.epochs_run} epochs")

    with step("eval on the validation and test splits"):
        from medtk.train.evaluate import evaluate_run

        step.result(_metrics_line(evaluate_run(run).test))

    with step(f"compress --int8 ({_compress_recipe(settings)})"):
        verdict = _compress(run, settings, max_auc_drop)
        step.result(f"quality gate {verdict.level}: {verdict.summary}")

    with step("bench float32 and the recommended variant on this machine"):
        step.result(_bench(run, settings))

    with step("explain: do the CAMs point at the lesions?"):
        step.result(_localize(run))

    with step("report"):
        from medtk.report.build import write_report

        report = write_report(out)
        step.result(f"{report.gallery_cases} CAM cases, quality gate {report.verdict}")  # the same verdict

    seconds = time.perf_counter() - started
    echo(f"pipeline finished in {seconds / 60:.1f} min")
    echo(f"report: {report.path.resolve()}")
    return PipelineResult(run=run, report=report.path, verdict=verdict, seconds=seconds)


class _RemainingTime:
    """After each epoch, the demo's estimate of the time it has left: the epochs left at the time of an epoch
    (the first epoch's, then the median of the later ones: the first also traces the graphs), plus the steps
    after training, which cost about `AFTER_TRAINING_EPOCHS` more epochs (pruning and QAT epochs, then
    conversion, evaluation of every variant, bench, explanation, report). Early stopping can end sooner."""

    def __init__(self, echo: Callable[[str], None], settings: PipelineSettings):
        self.echo, self.settings, self.epochs = echo, settings, []

    def __call__(self, timing: EpochTimings, planned: int) -> None:
        self.epochs.append(timing.total.wall)
        per_epoch = self.epochs[0] if len(self.epochs) == 1 else statistics.median(self.epochs[1:])
        left = max(0, planned - (timing.epoch + 1))
        after = (self.settings.prune_epochs + self.settings.qat_epochs + AFTER_TRAINING_EPOCHS) * per_epoch
        epochs = f"{left} epoch{'' if left == 1 else 's'}"
        self.echo(f"      epoch {timing.epoch + 1}/{planned} took {_duration(timing.total.wall)}: about "
                  f"{_duration(left * per_epoch + after)} left ({epochs}, then compress, bench, explain and report)")


def _compress(run: Run, settings: PipelineSettings, max_auc_drop: float | None) -> Verdict:
    """Run compress; its verdict, failed included, is a result to report (compress.json is written)."""
    from medtk.compress.workflow import compress_run

    try:
        compress_run(run.root, compress_options(settings, max_auc_drop))
    except QualityGateError:
        pass  # compress.json holds everything the verdict is decided from
    return compress_verdict(run.compression())


def compress_options(settings: PipelineSettings, max_auc_drop: float | None = None):
    """`medtk compress --int8` as `settings` ask: 0 pruning or QAT epochs leaves that step out."""
    from medtk.compress.options import CompressOptions

    return CompressOptions.given(
        int8=True, prune=settings.prune_epochs > 0, prune_epochs=settings.prune_epochs or None,
        qat=settings.qat_epochs > 0, qat_epochs=settings.qat_epochs or None,
        calibration=settings.calibration, max_auc_drop=max_auc_drop,
    )


def _compress_recipe(settings: PipelineSettings) -> str:
    steps = [f"{name} {epochs}" for name, epochs in (("prune", settings.prune_epochs), ("QAT", settings.qat_epochs)) if epochs]
    return " + ".join(steps) + " epochs" if steps else "post-training quantization, no pruning or QAT"


def _localize(run: Run) -> str:
    """CAM, Grad-CAM and every exported variant scored against the test split's lesion masks (when the
    data has them): the demo's report then shows whether its explanations point at the lesions."""
    from medtk.errors import DataError
    from medtk.train.explain.localize import localize_run

    try:
        report = localize_run(run.root)
    except DataError as error:
        return f"skipped: {error}"
    parts = [f"{entry.name} {entry.pointing_game:.2f} (chance {entry.chance.pointing_game:.2f})" for entry in report.scores]
    return f"pointing game on {report.images} test lesions: " + ", ".join(parts)


def _bench(run: Run, settings: PipelineSettings) -> str:
    """`medtk bench` in a child process: started from this process (TensorFlow loaded, GBs resident),
    the bench workers would inherit its peak-RSS high-water mark and report it as their own."""
    import subprocess
    import sys

    from medtk.runtime.bench import read_bench_report

    models = run.bench_models()
    if not models:
        return "nothing to bench: no exported model"
    command = [sys.executable, "-m", "medtk", "-q", "bench", *map(str, models), "--runs", str(settings.bench_runs),
               "--warmup", str(settings.bench_warmup), "--json", str(run.bench_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MedtkError(f"medtk bench failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    report = read_bench_report(run.bench_file)
    parts = [f"{result.variant} p50 {result.bare.p50_ms:.2f} ms" for result in report.results]
    where = report.results[0].where
    return f"{', '.join(parts)} ({where.mode}, {where.device or 'unprofiled host'}; {run.bench_file.name})"


def _metrics_line(test: SplitMetrics | None) -> str:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    if test is None:
        return "no test split"
    return (f"test AUC {show(test.auc)}, accuracy {show(test.accuracy)}, sensitivity {show(test.sensitivity)}, "
            f"specificity {show(test.specificity)}")


class _Steps:
    """Numbered steps with wall time: `with steps("name"): ...; steps.result("...")`."""

    def __init__(self, echo: Callable[[str], None], total: int):
        self.echo, self.total, self.number = echo, total, 0
        self._name, self._started = "", 0.0

    def __call__(self, name: str) -> "_Steps":
        self.number += 1
        self._name = name
        return self

    def __enter__(self) -> "_Steps":
        self.echo(f"[{self.number}/{self.total}] {self._name} ...")
        self._started = time.perf_counter()
        return self

    def result(self, text: str) -> None:
        self.echo(f"      {text}")

    def __exit__(self, kind, error, traceback) -> None:
        seconds = time.perf_counter() - self._started
        status = "done" if kind is None else "FAILED"
        self.echo(f"      {status} in {_duration(seconds)}")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
