"""Small-data benchmark (issue 22): does a default `medtk train` learn on a few hundred images?

    python benchmarks/small_data.py --sizes 300 600 --seeds 0 1 --label after
    python benchmarks/small_data.py --label before --pythonpath /tmp/medtk-base/pkgs   # base commit's code

Makes stratified subsets of PneumoniaMNIST under --work (never in the repository): `--sizes` training
images drawn from the official train split, a validation split of `round(0.13 * size)` images drawn
from the official val split (a few dozen, as in the issue's report: 546 train / 78 val), and the whole
official test split (624 images) so the test intervals stay informative. Each size uses a fixed seed
for the draw. Then it trains with defaults except `--input-size` (time) and `--weights none` (from
scratch, as reported), one run at a time, and appends one JSON line per run to --results: test AUC
with its bootstrap interval, and balanced accuracy at the operating point ((sensitivity + specificity)
/ 2, interval by the normal approximation from the test counts).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VAL_PER_TRAIN = 0.13  # the 78 validation images for 546 training images


def stratified(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `count` items keeping the class proportions (largest remainder), sorted."""
    classes, totals = np.unique(labels, return_counts=True)
    exact = totals / totals.sum() * count
    take = np.floor(exact).astype(int)
    take[np.argsort(exact - take)[::-1][: count - take.sum()]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=n, replace=False) for c, n in zip(classes, take)]
    return np.sort(np.concatenate(picked))


def make_subset(source: Path, size: int, work: Path) -> Path:
    """`work/n{size}/pneumoniamnist.npz` (the file name keeps MedMNIST's class names); made once."""
    out = work / f"n{size}" / "pneumoniamnist.npz"
    if out.is_file():
        return out
    data = np.load(source)
    rng = np.random.default_rng(1000 + size)
    arrays = {"test_images": data["test_images"], "test_labels": data["test_labels"]}
    for split, count in (("train", size), ("val", round(VAL_PER_TRAIN * size))):
        chosen = stratified(data[f"{split}_labels"].ravel(), count, rng)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = data[f"{split}_images"][chosen], data[f"{split}_labels"][chosen]
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(".subset.tmp.npz")
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, out)
    return out


def balanced_at_operating_point(test: dict) -> tuple[float, list[float]]:
    """(sens + spec) / 2 at the validation-chosen threshold, with a 95% normal-approximation interval."""
    point = test["operating_point"]
    sens, spec = point["sensitivity"], point["specificity"]
    positives, negatives = point["tp"] + point["fn"], point["tn"] + point["fp"]
    value = (sens + spec) / 2
    half = 1.96 * math.sqrt(sens * (1 - sens) / positives + spec * (1 - spec) / negatives) / 2
    return value, [max(0.0, value - half), min(1.0, value + half)]


def train_once(data: Path, out: Path, seed: int, args) -> dict:
    command = [sys.executable, "-m", "medtk", "-q", "train", "--data", str(data), "--out", str(out),
               "--input-size", str(args.input_size), "--weights", "none", "--seed", str(seed)]
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    minutes = (time.perf_counter() - started) / 60
    metrics = json.loads((out / "metrics.json").read_text())
    training = json.loads((out / "training.json").read_text())
    test = metrics["test"]
    balanced, balanced_ci = balanced_at_operating_point(test)
    return {"auc": test["auc"], "auc_ci": test["ci"]["auc"], "balanced_accuracy_op": round(balanced, 4),
            "balanced_accuracy_op_ci": [round(v, 4) for v in balanced_ci], "val_auc": metrics["val"]["auc"],
            "epochs_run": training["epochs_run"], "minutes": round(minutes, 1)}


def table(results: Path) -> str:
    """The results file as a markdown table, one row per run."""
    lines = ["| code | train / val images | seed | epochs run | test AUC (95% CI) | balanced accuracy at the operating point (95% CI) | val AUC (final model) | minutes |",
             "|---|---|---|---:|---|---|---:|---:|"]
    for row in map(json.loads, results.read_text().splitlines()):
        auc, lo, hi = row["auc"], *row["auc_ci"]
        ba, blo, bhi = row["balanced_accuracy_op"], *row["balanced_accuracy_op_ci"]
        lines.append(f"| {row['label']} | {row['size']} / {round(VAL_PER_TRAIN * row['size'])} | {row['seed']} | "
                     f"{row['epochs_run']} | {auc:.3f} ({lo:.3f}-{hi:.3f}) | {ba:.3f} ({blo:.3f}-{bhi:.3f}) | "
                     f"{row['val_auc']:.3f} | {row['minutes']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "pneumoniamnist.npz")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medtk-small"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 600])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--input-size", type=int, default=32)  # resnet50's minimum: time on 2 shared cores
    parser.add_argument("--label", default="", help="before / after: recorded with each result (required to train)")
    parser.add_argument("--table", action="store_true", help="print the results file as a markdown table and stop")
    parser.add_argument("--pythonpath", default="", help="run another checkout's medtk (PYTHONPATH)")
    parser.add_argument("--results", type=Path, default=None, help="JSON lines [default: WORK/results.jsonl]")
    args = parser.parse_args()
    results = args.results or args.work / "results.jsonl"
    if args.table:
        print(table(results))
        return
    if not args.label:
        parser.error("--label is required to train")
    for size in args.sizes:
        data = make_subset(args.data, size, args.work)
        for seed in args.seeds:
            out = args.work / "runs" / f"{args.label}-n{size}-s{seed}"
            if out.exists():
                raise SystemExit(f"{out}: exists; remove it or choose another --label")
            row = {"label": args.label, "size": size, "seed": seed, **train_once(data, out, seed, args)}
            print(json.dumps(row), flush=True)
            with open(results, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
