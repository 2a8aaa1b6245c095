"""Compression benchmark (issue 3): `medtk compress RUN --int8` on the ResNet50 PneumoniaMNIST run.

    /work/venv/bin/python benchmarks/compress_pneumonia.py [--run benchmarks/.cache/pneumonia-resnet50]
        [--threads 2] [--runs 50] [-- extra medtk compress flags]

The run folder is the one `benchmarks/train_accuracy.py` leaves behind. This script runs the real CLI
(so compress.json and RUN/export/ are exactly what a user gets), then measures each exported variant's
latency through `medtk.runtime.Classifier` with 2 threads (median of --runs calls on one prepared test
image after 5 warm-up calls), and writes the section "## Compression on PneumoniaMNIST (issue 3)" of
benchmarks/RESULTS.md (other sections untouched).

Targets: int8 test AUC within 0.005 of float32; int8 file <= 26% of the float32 file; pruned + PQAT
int8 gzip size <= 17% of the float32 file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## Compression on PneumoniaMNIST (issue 3)"
WARMUP = 5


def run_compress(run: Path, extra: list[str]) -> tuple[list[str], int, float]:
    command = [sys.executable, "-m", "medtk", "compress", str(run), "--int8", *extra]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    code = subprocess.call(command)
    return command, code, time.perf_counter() - started


def test_image(run: Path, size: int, channels: int) -> np.ndarray:
    from medtk.config import load_config
    from medtk.data import load_dataset
    from medtk.runtime.imaging import prepare_input

    config = load_config(run / "config.toml")
    test = load_dataset(config.data.src, seed=config.data.seed, split_file=run / "split.csv").splits["test"]
    return prepare_input(test.load(0), size, channels)[None]


def latency_ms(path: Path, image: np.ndarray, threads: int, runs: int) -> tuple[float, str, tuple[int, int]]:
    """Median latency in ms, the backend in use, and the CAM grid (h, w)."""
    from medtk.runtime import Classifier

    classifier = Classifier(path, num_threads=threads)
    for _ in range(WARMUP):
        _, cams = classifier.predict_prepared(image)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        classifier.predict_prepared(image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), f"{classifier.backend}, {classifier.delegate}", cams.shape[1:3]


def section(report: dict, latencies: dict, command: list[str], code: int, seconds: float, args, backend: str,
            grid: tuple[int, int]) -> str:
    variants = {v["name"]: v for v in report["variants"]}
    reference = variants["float32"]
    float_size = reference["size_bytes"]
    keras = report["reference"].get("keras_test") or {}
    rows = [
        "| variant | status | size MB | % of float32 | gzip MB | gzip % of float32 | sparsity | test AUC | dAUC | "
        "accuracy | sensitivity | specificity | CAM r | CAM peak same / within 1 | latency p50 ms (2 thr) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in variants.items():
        test, cam = v["test"], v["cam_agreement"]
        rows.append(
            f"| {name} | {v['status']} | {v['size_bytes'] / 1e6:.2f} | {100 * v['size_bytes'] / float_size:.1f} | "
            f"{v['gzip_bytes'] / 1e6:.2f} | {100 * v['gzip_bytes'] / float_size:.1f} | {v['sparsity']:.3f} | "
            f"{_f(test['auc'])} | {_s(v['delta_auc'])} | {_f(test['accuracy'])} | {_f(test['sensitivity'])} | "
            f"{_f(test['specificity'])} | {_f(cam['correlation'], 3)} | {_f(cam['peak_match'], 2)} / "
            f"{_f(cam['peak_within_one'], 2)} | {latencies[name]:.2f} |"
        )
    targets = []
    int8, pqat = variants.get("int8"), variants.get("int8_pqat")
    if int8:
        drop = -(int8["delta_auc"] or 0.0)
        targets.append(f"- int8 AUC within 0.005 of float32: drop {drop:+.4f} -> {'met' if drop <= 0.005 else 'NOT met'}")
        share = int8["size_bytes"] / float_size
        targets.append(f"- int8 file <= 26% of float32: {100 * share:.1f}% -> {'met' if share <= 0.26 else 'NOT met'}")
    if pqat:
        share = pqat["gzip_bytes"] / float_size
        targets.append(
            f"- pruned + PQAT int8 gzip <= 17% of the float32 file: {100 * share:.1f}% -> {'met' if share <= 0.17 else 'NOT met'}"
        )
    compression = report.get("compression", {})
    return "\n".join([
        HEADING,
        "",
        f"Run: `{args.run}` (ResNet50, {report['reference']['test_images']} PneumoniaMNIST test images, "
        f"trained by benchmarks/train_accuracy.py). Keras model test AUC {_f(keras.get('auc'))} (metrics.json); "
        f"every delta is against the float32 TFLite measured through medtk.runtime (AUC {_f(reference['test']['auc'])}).",
        f"Host: {platform.machine()}, Python {platform.python_version()}, {backend}; latency = median of "
        f"{args.runs} `Classifier.predict_prepared` calls on one test image after {WARMUP} warm-up calls, "
        f"{args.threads} threads, the other developers' jobs sharing the 2 vCPUs (noisy).",
        "",
        "Command:",
        "",
        f"    /work/venv/bin/python benchmarks/compress_pneumonia.py --run {args.run} --threads {args.threads} --runs {args.runs}",
        f"    # = medtk {' '.join(command[3:])}   "
        + (f"(exit {code}, {seconds / 60:.1f} min)" if seconds else "(compress.json of an earlier run; --skip-compress)"),
        "",
        *rows,
        "",
        f"Pruning: target {compression.get('target_sparsity')}, after pruning {compression.get('sparsity_after_pruning')}, "
        f"after QAT {compression.get('sparsity_after_qat')}; schedule {json.dumps(compression.get('schedule'))}; "
        f"{report['calibration_images']} calibration images. Gate (max AUC drop {report['gate']['max_auc_drop']}): "
        f"{'passed' if report['gate']['passed'] else 'failed: ' + '; '.join(report['gate']['failures'])}.",
        "",
        "Targets:",
        "",
        *targets,
        "",
        f"CAM agreement is against float32 for the class float32 predicts, on a {grid[0]}x{grid[1]} CAM grid"
        + (" (so 'within 1 cell' is always true at this input size)." if max(grid) <= 2 else "."),
        "",
        f"Note: {report['note']} (compare the int8 and int8_pqat latency columns).",
        "",
    ])


def write_section(text: str, results: Path, heading: str = HEADING) -> None:
    """Replace (or append) the section under `heading` of RESULTS.md, leaving the others as they are."""
    old = results.read_text(encoding="utf-8") if results.is_file() else ""
    start = old.find(heading)
    if start < 0:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + text
    else:
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + text.rstrip("\n") + "\n" + ("\n" + old[end + 1 :] if end >= 0 else "")
    temporary = results.with_suffix(".md.tmp")
    temporary.write_text(new, encoding="utf-8")
    temporary.replace(results)


def _f(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _s(value) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=HERE / ".cache" / "pneumonia-resnet50")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--results", type=Path, default=RESULTS, help="Markdown file whose section is replaced.")
    parser.add_argument("--skip-compress", action="store_true", help="Reuse RUN/compress.json (latency and table only).")
    parser.add_argument("extra", nargs="*", help="Extra `medtk compress` flags (after --).")
    args = parser.parse_args()
    if not (args.run / "model.keras").is_file():
        print(f"{args.run}: no trained run (run benchmarks/train_accuracy.py first)", file=sys.stderr)
        return 1
    command, code, seconds = [sys.executable, "-m", "medtk", "compress", str(args.run), "--int8", *args.extra], 0, 0.0
    if not args.skip_compress:
        command, code, seconds = run_compress(args.run, args.extra)
        if code not in (0, 3):  # 3 = the quality gate failed; the files and compress.json are still there
            return code
    report = json.loads((args.run / "compress.json").read_text())
    first = report["variants"][0]
    from medtk.runtime import read_metadata

    metadata = read_metadata(args.run / first["path"])
    image = test_image(args.run, metadata.input.size, metadata.input.channels)
    latencies, backend, grid = {}, "", (0, 0)
    for variant in report["variants"]:
        latencies[variant["name"]], backend, grid = latency_ms(args.run / variant["path"], image, args.threads, args.runs)
        print(f"{variant['name']}: p50 {latencies[variant['name']]:.2f} ms", flush=True)
    text = section(report, latencies, command, code, seconds, args, backend, grid)
    write_section(text, args.results)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
