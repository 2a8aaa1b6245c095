"""The bench report: one versioned, typed JSON document (`medtk-bench/1`) per `medtk bench` run.

`run_bench` returns a `BenchReport`; `write_report` writes it atomically and strictly (no NaN or
infinity); `read_bench_report` is how anything else reads a bench file, today's and older ones
(docs/ARCHITECTURE.md). Key names are the file format: add fields with defaults, never rename one.

Where each number came from is explicit in every result (`where.mode`):
  on-device      measured on the machine this runs on, which matches the device profile;
  remote         measured on another machine over SSH (`--host`);
  host-estimate  measured here, and the device's latency estimated from its profile's published
                 reference figures (method, reference and source in `estimate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from medtk.devices import Profile
from medtk.errors import ModelError
from medtk.jsondoc import Document
from medtk.runtime.bench.estimate import Estimate
from medtk.runtime.bench.measurement import ModelBench
from medtk.runtime.bench.stats import ratio

SCHEMA = "medtk-bench/1"


@dataclass(frozen=True)
class Where:
    """Where a result was measured; which fields are set depends on `mode`."""

    mode: str  # "on-device" | "remote" | "host-estimate"
    device: str | None = None  # on-device / host-estimate: the device profile
    detected_from: str | None = None  # the evidence the device detection used
    measured_on: str | None = None  # host-estimate: hostname of the machine that measured
    host: str | None = None  # remote: user@address
    port: int | None = None
    python: str | None = None
    remote_hostname: str | None = None
    detected_profile: str | None = None  # remote: the profile the remote machine looks like


@dataclass(frozen=True)
class MemoryCheck:
    """Peak RSS of the worker (both interpreters loaded) against the device's RAM."""

    device: str
    device_memory_mb: int
    peak_rss_mb: float
    fraction: float
    ok: bool
    message: str


@dataclass(frozen=True)
class BenchResult(ModelBench):
    """One model's measurement, where it was made, and what it means for the device."""

    where: Where
    estimate: Estimate | None = None  # host-estimate only
    memory_check: MemoryCheck | None = None  # when a device profile is known

    @classmethod
    def of(cls, bench: ModelBench, where: Where, profile: Profile | None,
           estimate: Estimate | None = None) -> "BenchResult":
        measured = {field.name: getattr(bench, field.name) for field in fields(ModelBench)}
        return cls(**measured, where=where, estimate=estimate, memory_check=memory_check(bench, profile))


@dataclass(frozen=True)
class ComparisonRow:
    """One model in the comparison table; speed-up is relative to the first model (bare-invoke p50)."""

    model: str
    variant: str
    mode: str
    p50_ms: float
    p90_ms: float
    mean_ms: float
    throughput_per_s: float | None
    end_to_end_p50_ms: float
    size_mb: float
    peak_rss_mb: float
    speedup_vs_first: float | None
    estimated_device_ms: float | None


@dataclass(frozen=True)
class ReportSettings:
    runs: int
    warmup: int
    threads: int | None  # None: the device profile's default


@dataclass(frozen=True)
class BenchReport(Document):
    """Everything one `medtk bench` run measured (the `--json` file)."""

    SCHEMA = SCHEMA

    medtk_version: str
    created: str
    device: str | None  # the --device profile, if one was given
    settings: ReportSettings
    notes: tuple[str, ...]
    results: tuple[BenchResult, ...]
    comparison: tuple[ComparisonRow, ...]


def memory_check(bench: ModelBench, profile: Profile | None) -> MemoryCheck | None:
    if profile is None:
        return None
    fraction = bench.rss_peak_mb / profile.memory_mb
    ok = fraction <= 1.0
    message = (
        f"peak RSS {bench.rss_peak_mb:.0f} MB is {fraction:.0%} of {profile.name}'s {profile.memory_mb} MB"
        + ("" if ok else ": it will not fit")
    )
    return MemoryCheck(device=profile.name, device_memory_mb=profile.memory_mb, peak_rss_mb=bench.rss_peak_mb,
                       fraction=fraction, ok=ok, message=message)


def comparison(results: tuple[BenchResult, ...] | list[BenchResult]) -> tuple[ComparisonRow, ...]:
    """One row per model; speed-up is relative to the first model (bare-invoke p50)."""
    if not results:
        return ()
    first = results[0].bare.p50_ms
    return tuple(
        ComparisonRow(
            model=result.model,
            variant=result.variant,
            mode=result.where.mode,
            p50_ms=result.bare.p50_ms,
            p90_ms=result.bare.p90_ms,
            mean_ms=result.bare.mean_ms,
            throughput_per_s=result.bare.throughput_per_s,
            end_to_end_p50_ms=result.end_to_end.p50_ms,
            size_mb=result.size_bytes / 1e6,
            peak_rss_mb=result.rss_peak_mb,
            speedup_vs_first=ratio(first, result.bare.p50_ms),
            estimated_device_ms=result.estimate.estimated_ms if result.estimate else None,
        )
        for result in results
    )


def write_report(report: BenchReport, path: Path) -> None:
    """Atomic and strict: a reader never sees half a file, and NaN or infinity is a ValueError."""
    from medtk.io import atomic_write_json

    atomic_write_json(Path(path), report.to_json())


def read_bench_report(path: str | Path) -> BenchReport:
    """A bench file (today's or older); a missing, corrupt or newer one is a one-line `ModelError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ModelError(f"{path}: no such bench file") from None
    except OSError as error:
        raise ModelError(f"{path}: cannot read the bench file ({error.strerror or error})") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        raise ModelError(f"{path}: not a JSON bench file ({error})") from None
    return BenchReport.from_json(data, path)
