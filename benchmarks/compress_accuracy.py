"""Accuracy-controlled int8 and CAM fidelity (issue 11): `medtk compress RUN --int8` on several runs, then
`medtk bench` (2 threads) on every exported variant, one table per run in benchmarks/RESULTS.md.

    nice -n 5 .venv/bin/python benchmarks/compress_accuracy.py --run NAME=RUN [--run NAME=RUN ...]
        [--threads 2] [--runs 30] [--skip-compress] [-- extra medtk compress flags]

Each run's table: variant, int8 ops kept float, size, gzip, validation AUC, test AUC, delta to float32,
CAM correlation with float32, same CAM peak, latency p50 (bare invoke, `medtk bench --threads 2`),
followed by the gate, the recommended variant and why the others were not chosen. Targets: every int8
variant within 0.01 test AUC of float32; the deployed variant's CAM correlation >= 0.9; int8_mixed
latency within 1.15x of full int8. Replaces the section "## Accuracy-controlled int8 and CAM
fidelity (issue 11)" of RESULTS.md (other sections untouched).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from compress_pneumonia import _f, _s, write_section  # same folder: run as a script

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## Accuracy-controlled int8 and CAM fidelity (issue 11)"
TARGET_AUC_DROP, TARGET_CAM, TARGET_LATENCY = 0.01, 0.9, 1.15


def compress(run: Path, extra: list[str]) -> tuple[str, int, float]:
    command = [sys.executable, "-m", "medtk", "compress", str(run), "--int8", *extra]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    code = subprocess.call(command)
    return " ".join(["medtk", *command[3:]]), code, time.perf_counter() - started


def bench(run: Path, report: dict, threads: int, runs: int, reuse: bool = False) -> dict[str, float]:
    """p50 of the bare invoke per variant, from `medtk bench` (each model in its own worker)."""
    out = run / f"bench-issue11-{threads}t.json"
    if reuse and out.is_file():
        return {Path(row["model"]).stem: row["p50_ms"] for row in json.loads(out.read_text())["comparison"]}
    models = [str(run / variant["path"]) for variant in report["variants"]]
    command = [sys.executable, "-m", "medtk", "-q", "bench", *models, "--threads", str(threads), "--runs", str(runs),
               "--json", str(out)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    rows = json.loads(out.read_text())["comparison"]
    return {Path(row["model"]).stem: row["p50_ms"] for row in rows}


def table(name: str, run: Path, report: dict, latency: dict[str, float], command: str, code: int, seconds: float) -> str:
    variants = {v["name"]: v for v in report["variants"]}
    reference = variants["float32"]
    lines = [
        f"### {name}",
        "",
        f"Run `{run}`; {report['reference']['test_images']} test images; float32 TFLite test AUC "
        f"{_f(reference['test']['auc'])}.",
        "",
        f"    {command}   " + (f"(exit {code}, {seconds / 60:.1f} min)" if seconds else "(compress.json of an earlier run)"),
        "",
        "| variant | status | ops kept float | size MB | gzip MB | val AUC | test AUC | dAUC | CAM r | same peak | "
        "latency p50 ms (2 thr) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant_name, v in variants.items():
        cam = v.get("cam_agreement") or {}
        mark = " **(deployed)**" if variant_name == report.get("recommended") else ""
        lines.append(
            f"| {variant_name}{mark} | {v['status']} | {len(v.get('float_layers') or [])} | {v['size_bytes'] / 1e6:.2f} | "
            f"{v['gzip_bytes'] / 1e6:.2f} | {_f((v.get('val') or {}).get('auc'))} | {_f(v['test']['auc'])} | "
            f"{_s(v.get('delta_auc'))} | {_f(cam.get('correlation'), 3)} | {_f(cam.get('peak_match'), 2)} | "
            f"{_f(latency.get(variant_name), 2)} |"
        )
    control = report.get("accuracy_control")
    lines.append("")
    if control:
        lines.append(
            f"Accuracy control (validation only): float32 val AUC {_f(control['val_reference'])}, full int8 "
            f"{_f(control['full_int8_val'])}, budget {control['max_val_drop']}; "
            + (f"kept float ({control['ranking']} ranking, {control['models_tried']} models measured): "
               + ", ".join(f"`{layer}`" for layer in control["float_layers"])
               if control["float_layers"] else "full int8 within budget, no int8_mixed.")
        )
        lines.append("")
    gate = report["gate"]
    lines.append(f"Gate (max AUC drop {gate['max_auc_drop']}, min CAM r {gate.get('min_cam_correlation')}): "
                 + ("passed." if gate["passed"] else "failed: " + "; ".join(gate["failures"]) + "."))
    lines.append(f"Recommended: **{report.get('recommended')}**. Not chosen: "
                 + "; ".join(f"{k}: {v}" for k, v in (report.get("not_recommended") or {}).items()) + ".")
    lines += ["", "Targets:", ""] + targets(variants, report.get("recommended"), latency) + [""]
    return "\n".join(lines)


def targets(variants: dict, recommended: str | None, latency: dict[str, float]) -> list[str]:
    out = []
    for name, v in variants.items():
        if v["input_dtype"] == "uint8":
            delta = v.get("delta_auc") or 0.0
            out.append(f"- {name} within {TARGET_AUC_DROP} test AUC of float32: dAUC {delta:+.4f} -> "
                       f"{'met' if -delta <= TARGET_AUC_DROP else 'NOT met'}")
    if recommended:
        cam = (variants[recommended].get("cam_agreement") or {}).get("correlation")
        out.append(f"- deployed ({recommended}) CAM r >= {TARGET_CAM}: {_f(cam, 3)} -> "
                   f"{'met' if cam is not None and cam >= TARGET_CAM else 'NOT met'}")
    else:
        out.append("- deployed CAM r >= 0.9: no variant deployed -> NOT met")
    if "int8_mixed" in variants and latency.get("int8") and latency.get("int8_mixed"):
        ratio = latency["int8_mixed"] / latency["int8"]
        out.append(f"- int8_mixed latency within {TARGET_LATENCY}x of int8: {ratio:.2f}x -> "
                   f"{'met' if ratio <= TARGET_LATENCY else 'NOT met'}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN folder (repeat for each model).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--skip-compress", action="store_true", help="Reuse each RUN/compress.json.")
    parser.add_argument("--reuse-bench", action="store_true", help="Reuse each RUN/bench-issue11-<T>t.json.")
    parser.add_argument("--intro", default="", help="A paragraph placed under the heading.")
    parser.add_argument("extra", nargs="*", help="Extra `medtk compress` flags (after --).")
    args = parser.parse_args()
    parts = [HEADING, ""] + ([args.intro, ""] if args.intro else [])
    for item in args.run:
        name, _, folder = item.partition("=")
        run = Path(folder)
        command, code, seconds = "medtk compress " + str(run) + " --int8 " + " ".join(args.extra), 0, 0.0
        if not args.skip_compress:
            command, code, seconds = compress(run, args.extra)
            if code not in (0, 3):
                return code
        report = json.loads((run / "compress.json").read_text())
        latency = bench(run, report, args.threads, args.runs, args.reuse_bench)
        parts.append(table(name, run, report, latency, command, code, seconds))
        write_section("\n".join(parts), args.results, HEADING)  # after each run, so a later failure keeps the earlier tables
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
