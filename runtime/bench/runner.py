"""`run_bench`: measure models where they will run, or say plainly that a number is an estimate.

Every model is measured in a fresh worker process (locally or over SSH), so its peak RSS is its own;
the result is a `BenchReport` (report.py), whose `where.mode` says where each number came from.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from medtk import __version__
from medtk.devices import Profile, detect_device, load_profile, resolve_profile
from medtk.errors import ConfigError, MedtkError, ModelError
from medtk.runtime.backend import resolve_threads
from medtk.runtime.bench.estimate import estimate_latency
from medtk.runtime.bench.measurement import ModelBench
from medtk.runtime.bench.protocol import parse_worker_output, worker_command
from medtk.runtime.bench.remote import RemoteTarget, run_remote
from medtk.runtime.bench.report import BenchReport, BenchResult, ReportSettings, Where, comparison
from medtk.variants import precision_of


@dataclass(frozen=True)
class BenchSettings:
    runs: int = 50
    warmup: int = 5
    threads: int | None = None  # None: the device profile's default threads (capped by host cores)
    image: Path | None = None


def run_bench(
    models: list[Path],
    settings: BenchSettings,
    device: str | None = None,
    remote: RemoteTarget | None = None,
) -> BenchReport:
    """Measure every model; `write_report` writes the result as the `--json` file (`medtk-bench/1`)."""
    _check(models, settings, local=remote is None)
    notes: list[str] = []
    resolved = resolve_profile(device) if device else None
    if resolved is not None and resolved.via_alias:
        notes.append(resolved.describe())
    profile = resolved.profile if resolved else None
    if remote is not None:
        results = _run_remote(models, settings, profile, remote, notes)
    else:
        results = _run_local(models, settings, profile, notes)
    return BenchReport(
        medtk_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        device=profile.name if profile else None,
        settings=ReportSettings(runs=settings.runs, warmup=settings.warmup, threads=settings.threads),
        notes=tuple(notes),
        results=tuple(results),
        comparison=comparison(results),
    )


def _check(models: list[Path], settings: BenchSettings, local: bool = True) -> None:
    if not models:
        raise ConfigError("give at least one MODEL.tflite")
    for model in models:
        if not model.is_file():
            raise ModelError(f"{model}: no such model file")
    if settings.runs < 2:
        raise ConfigError(f"--runs {settings.runs}: need at least 2 timed runs for statistics")
    if settings.warmup < 0:
        raise ConfigError(f"--warmup {settings.warmup}: must be 0 or more")
    if settings.threads is not None and settings.threads < 1:
        raise ConfigError(f"--threads {settings.threads}: must be at least 1")
    if local:  # here: bounded by this machine's CPUs (a remote worker bounds by its own)
        resolve_threads(settings.threads, "--threads")
    if settings.image is not None and not settings.image.is_file():
        raise ConfigError(f"--image {settings.image}: no such file")


def _run_local(models: list[Path], settings: BenchSettings, profile: Profile | None,
               notes: list[str]) -> list[BenchResult]:
    detection = detect_device()
    here = load_profile(detection.profile) if detection.profile else None
    on_device = profile is None or (here is not None and here.name == profile.name)
    target = profile or here
    host_cores = resolve_threads(None)
    if settings.threads is not None:
        threads = settings.threads
    elif target is not None:
        threads = min(target.default_threads, host_cores)
    else:
        threads = host_cores
    if not on_device:
        notes.append(
            f"this machine is not a {profile.name} ({detection.evidence}): measured here with {threads} "
            f"threads (profile default {profile.default_threads}, host has {host_cores} cores) and the "
            f"device latency ESTIMATED from the profile's reference figures"
        )
    delegate = _delegate_for(target) if on_device else "cpu"
    results = []
    for model in models:
        bench = _run_worker_here(model, threads, settings, delegate)
        if on_device:
            where = Where(mode="on-device", device=target.name if target else None, detected_from=detection.evidence)
            results.append(BenchResult.of(bench, where, target))
        else:
            where = Where(mode="host-estimate", device=profile.name, measured_on=bench.machine.hostname,
                          detected_from=detection.evidence)
            # device reference figures are LiteRT's: nothing is scaled from an ONNX Runtime run (macs 0)
            estimate = estimate_latency(profile, bench.macs, precision_of(bench.variant), bench.bare.p50_ms) \
                if bench.macs else None
            results.append(BenchResult.of(bench, where, profile, estimate))
    return results


def _run_remote(models: list[Path], settings: BenchSettings, profile: Profile | None, remote: RemoteTarget,
                notes: list[str]) -> list[BenchResult]:
    threads = settings.threads or (profile.default_threads if profile else 4)
    delegate = _delegate_for(profile) if profile else "cpu"
    results = []
    for model in models:
        bench = run_remote(remote, model, threads, settings.runs, settings.warmup, delegate, settings.image)
        detected = bench.machine.detected_profile
        if profile is not None and detected not in (None, profile.name):
            notes.append(f"--device {profile.name} but {remote.destination} looks like {detected} "
                         f"({bench.machine.detected_from})")
        device = profile or (load_profile(detected) if detected else None)
        where = Where(mode="remote", **remote.describe(), remote_hostname=bench.machine.hostname,
                      detected_profile=detected, detected_from=bench.machine.detected_from)
        results.append(BenchResult.of(bench, where, device))
    return results


def _run_worker_here(model: Path, threads: int, settings: BenchSettings, delegate: str) -> ModelBench:
    """A fresh interpreter process per model, so peak RSS belongs to this model alone."""
    image = str(settings.image) if settings.image is not None else None
    args = worker_command(sys.executable, str(model), threads, settings.runs, settings.warmup, delegate, image)
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0 and not done.stdout.strip():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MedtkError(f"{model}: bench worker failed ({lines[-1] if lines else f'exit {done.returncode}'})")
    return parse_worker_output(done.stdout, str(model))


def _delegate_for(profile: Profile | None) -> str:
    """On the device: try the GPU delegate where the profile lists one (falls back to CPU, recorded).

    The Edge TPU needs models compiled by edgetpu_compiler, which medtk does not produce: CPU there.
    """
    return "auto" if profile is not None and "gpu" in profile.delegates else "cpu"
