"""medtk.runtime.bench: latency, throughput and memory of `.tflite` models on a device, here or over SSH.

    from medtk.runtime.bench import BenchSettings, run_bench, write_report, read_bench_report
    report = run_bench([Path("model_int8.tflite")], BenchSettings(runs=50), device="rpi5")

One concern per module: `runner` (run_bench), `worker` (one model measured in a fresh process, started
as `python -m medtk.runtime.bench_worker`), `protocol` (that command line and its JSON line), `remote`
(SSH), `stats`, `estimate` (device latency from profile reference figures) and `report` (the
versioned `medtk-bench/1` document). See docs/ARCHITECTURE.md.
"""

from medtk.runtime.bench.estimate import METHOD, Estimate, estimate_latency, pick_reference
from medtk.runtime.bench.measurement import Machine, ModelBench
from medtk.runtime.bench.remote import RemoteTarget
from medtk.runtime.bench.report import (
    SCHEMA,
    BenchReport,
    BenchResult,
    ComparisonRow,
    MemoryCheck,
    ReportSettings,
    Where,
    read_bench_report,
    write_report,
)
from medtk.runtime.bench.runner import BenchSettings, run_bench
from medtk.runtime.bench.stats import LatencyStats, summarize

__all__ = [
    "SCHEMA",
    "METHOD",
    "BenchReport",
    "BenchResult",
    "BenchSettings",
    "ComparisonRow",
    "Estimate",
    "LatencyStats",
    "Machine",
    "MemoryCheck",
    "ModelBench",
    "RemoteTarget",
    "ReportSettings",
    "Where",
    "estimate_latency",
    "pick_reference",
    "read_bench_report",
    "run_bench",
    "summarize",
    "write_report",
]
