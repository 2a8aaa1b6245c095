"""`medtk bench`: measure models where they will run, or say plainly that a number is an estimate.

Every model is measured in a fresh worker process (locally or over SSH), so its peak RSS is its own.
Where each number came from is explicit in every result (`where.mode`):
  on-device      measured on the machine this runs on, which matches the device profile;
  remote         measured on another machine over SSH (`--host`);
  host-estimate  measured here, and the device's latency estimated from its profile's published
                 reference figures (method, reference and source in `estimate`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from medtk import __version__
from medtk.devices import Profile, detect_device, load_profile, resolve_profile
from medtk.errors import ConfigError, MedtkError, ModelError
from medtk.runtime.bench_estimate import estimate_latency
from medtk.runtime.bench_worker import ModelBench
from medtk.runtime.remote import RemoteTarget, parse_worker_output, run_remote

SCHEMA = "medtk-bench/1"


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
) -> dict:
    """Measure every model; the returned report is what `--json` writes (schema `medtk-bench/1`)."""
    _check(models, settings)
    notes: list[str] = []
    resolved = resolve_profile(device) if device else None
    if resolved is not None and resolved.via_alias:
        notes.append(resolved.describe())
    profile = resolved.profile if resolved else None
    if remote is not None:
        results = _run_remote(models, settings, profile, remote, notes)
    else:
        results = _run_local(models, settings, profile, notes)
    return {
        "schema": SCHEMA,
        "medtk_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": profile.name if profile else None,
        "settings": {"runs": settings.runs, "warmup": settings.warmup, "threads": settings.threads},
        "notes": notes,
        "results": results,
        "comparison": comparison(results),
    }


def _check(models: list[Path], settings: BenchSettings) -> None:
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
    if settings.image is not None and not settings.image.is_file():
        raise ConfigError(f"--image {settings.image}: no such file")


def _run_local(models: list[Path], settings: BenchSettings, profile: Profile | None, notes: list[str]) -> list[dict]:
    detection = detect_device()
    here = load_profile(detection.profile) if detection.profile else None
    on_device = profile is None or (here is not None and here.name == profile.name)
    target = profile or here
    host_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
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
            where = {"mode": "on-device", "device": target.name if target else None, "detected_from": detection.evidence}
            result = _result(bench, where, target, None)
        else:
            where = {"mode": "host-estimate", "device": profile.name, "measured_on": bench.machine["hostname"],
                     "detected_from": detection.evidence}
            estimate = estimate_latency(profile, bench.macs, _precision(bench.variant), bench.bare.p50_ms)
            result = _result(bench, where, profile, asdict(estimate))
        results.append(result)
    return results


def _run_remote(models, settings: BenchSettings, profile: Profile | None, remote: RemoteTarget, notes) -> list[dict]:
    threads = settings.threads or (profile.default_threads if profile else 4)
    delegate = _delegate_for(profile) if profile else "cpu"
    results = []
    for model in models:
        bench = run_remote(remote, model, _worker_args(threads, settings, delegate), settings.image)
        detected = bench.machine.get("detected_profile")
        if profile is not None and detected not in (None, profile.name):
            notes.append(f"--device {profile.name} but {remote.destination} looks like {detected} ({bench.machine['detected_from']})")
        device = profile or (load_profile(detected) if detected else None)
        where = {"mode": "remote", **remote.describe(), "remote_hostname": bench.machine["hostname"],
                 "detected_profile": detected, "detected_from": bench.machine["detected_from"]}
        results.append(_result(bench, where, device, None))
    return results


def _run_worker_here(model: Path, threads: int, settings: BenchSettings, delegate: str) -> ModelBench:
    """A fresh interpreter process per model, so peak RSS belongs to this model alone."""
    args = [sys.executable, "-m", "medtk.runtime.bench_worker", str(model), *_worker_args(threads, settings, delegate)]
    if settings.image is not None:
        args += ["--image", str(settings.image)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0 and not done.stdout.strip():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise MedtkError(f"{model}: bench worker failed ({lines[-1] if lines else f'exit {done.returncode}'})")
    return parse_worker_output(done.stdout, str(model))


def _worker_args(threads: int, settings: BenchSettings, delegate: str) -> list[str]:
    return ["--threads", str(threads), "--runs", str(settings.runs), "--warmup", str(settings.warmup), "--delegate", delegate]


def _delegate_for(profile: Profile | None) -> str:
    """On the device: try the GPU delegate where the profile lists one (falls back to CPU, recorded).

    The Edge TPU needs models compiled by edgetpu_compiler, which medtk does not produce: CPU there.
    """
    return "auto" if profile is not None and "gpu" in profile.delegates else "cpu"


def _precision(variant: str) -> str:
    return "int8" if variant == "int8" else "float32" if variant in ("float32", "dynamic", "float16") else variant


def _result(bench: ModelBench, where: dict, profile: Profile | None, estimate: dict | None) -> dict:
    return {"where": where, **asdict(bench), "estimate": estimate, "memory_check": memory_check(bench, profile)}


def memory_check(bench: ModelBench, profile: Profile | None) -> dict | None:
    """Peak RSS of the worker (both interpreters loaded) against the device's RAM."""
    if profile is None:
        return None
    fraction = bench.rss_peak_mb / profile.memory_mb
    ok = fraction <= 1.0
    message = (
        f"peak RSS {bench.rss_peak_mb:.0f} MB is {fraction:.0%} of {profile.name}'s {profile.memory_mb} MB"
        + ("" if ok else ": it will not fit")
    )
    return {"device": profile.name, "device_memory_mb": profile.memory_mb, "peak_rss_mb": bench.rss_peak_mb,
            "fraction": fraction, "ok": ok, "message": message}


def comparison(results: list[dict]) -> list[dict]:
    """One row per model; speed-up is relative to the first model (bare-invoke p50)."""
    if not results:
        return []
    first = results[0]["bare"]["p50_ms"]
    rows = []
    for result in results:
        bare = result["bare"]
        estimate = result["estimate"]
        rows.append({
            "model": result["model"],
            "variant": result["variant"],
            "mode": result["where"]["mode"],
            "p50_ms": bare["p50_ms"],
            "p90_ms": bare["p90_ms"],
            "mean_ms": bare["mean_ms"],
            "throughput_per_s": bare["throughput_per_s"],
            "end_to_end_p50_ms": result["end_to_end"]["p50_ms"],
            "size_mb": result["size_bytes"] / 1e6,
            "peak_rss_mb": result["rss_peak_mb"],
            "speedup_vs_first": first / bare["p50_ms"],
            "estimated_device_ms": estimate["estimated_ms"] if estimate else None,
        })
    return rows


def write_report(report: dict, path: Path) -> None:
    """Atomic: a reader never sees half a file."""
    from medtk.io import atomic_write_json

    atomic_write_json(path, report)
