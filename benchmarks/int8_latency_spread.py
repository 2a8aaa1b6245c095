"""Run-to-run spread of the int8 variants' latency (issue 11): `medtk bench` on a compressed run's
exported variants, repeated, each repeat benching every variant once (each in its own worker process).

    .venv/bin/python benchmarks/int8_latency_spread.py --run NAME=RUN [--run ...] [--repeats 5] [--threads 2]

Per variant: the median over repeats of the bare-invoke p50, with the smallest and largest repeat; and
the ratio of every int8 variant to full int8 within each repeat (neighbouring measurements, so load
that moves both cancels), median [min, max]. Target: int8_mixed within 1.15x of int8. Replaces the
section "## int8 latency, run-to-run spread (issue 11)" of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from compress_pneumonia import write_section  # same folder: run as a script

HERE = Path(__file__).resolve().parent
HEADING = "## int8 latency, run-to-run spread (issue 11)"
TARGET_RATIO = 1.15


def bench_once(models: list[Path], threads: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.json"
        command = [sys.executable, "-m", "medtk", "-q", "bench", *map(str, models), "--threads", str(threads),
                   "--runs", str(runs), "--json", str(out)]
        subprocess.run(command, check=True)
        return {Path(row["model"]).stem: row["p50_ms"] for row in json.loads(out.read_text())["comparison"]}


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def table(name: str, run: Path, repeats: list[dict[str, float]]) -> str:
    report = json.loads((run / "compress.json").read_text())
    names = [variant["name"] for variant in report["variants"]]
    lines = [f"### {name}", "", f"Run `{run}`; {len(repeats)} repeats.", "",
             "| variant | p50 ms, median [min, max] | vs int8, median [min, max] |", "| --- | ---: | ---: |"]
    for variant in names:
        ratio = ""
        if "int8" in repeats[0] and variant != "int8" and report["variants"][names.index(variant)]["input_dtype"] == "uint8":
            ratio = spread([r[variant] / r["int8"] for r in repeats]) + "x"
        lines.append(f"| {variant} | {spread([r[variant] for r in repeats])} | {ratio} |")
    if "int8_mixed" in names:
        worst = max(r["int8_mixed"] / r["int8"] for r in repeats)
        median = statistics.median(r["int8_mixed"] / r["int8"] for r in repeats)
        lines += ["", f"int8_mixed within {TARGET_RATIO}x of int8: median {median:.2f}x, worst repeat {worst:.2f}x -> "
                  + ("met" if median <= TARGET_RATIO else "NOT met")]
    return "\n".join(lines + [""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN folder (repeat for each model).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per model and repeat.")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    command = shlex.join(["benchmarks/int8_latency_spread.py", *sys.argv[1:]])
    parts = [HEADING, "", f"Measured {date.today()} on {platform.machine()} (Python {platform.python_version()}), bare invoke "
             f"through LiteRT, {args.threads} threads, {args.runs} timed runs per model and repeat:", "",
             f"    .venv/bin/python {command}", ""]
    for item in args.run:
        name, _, folder = item.partition("=")
        run = Path(folder)
        report = json.loads((run / "compress.json").read_text())
        models = [run / variant["path"] for variant in report["variants"]]
        repeats = [bench_once(models, args.threads, args.runs) for _ in range(args.repeats)]
        parts.append(table(name, run, repeats))
    write_section("\n".join(parts), args.results, HEADING)
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
