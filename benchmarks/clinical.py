"""Clinical-output benchmarks (issue 9) on PneumoniaMNIST, each a `medtk train` run in its own folder.

    python benchmarks/clinical.py small-data [--seeds 0 1]   # 500 training images, from scratch, defaults,
                                                             # 10 epochs at 64 px: without vs with precise BN
    python benchmarks/clinical.py full                       # the full run at sensitivity:0.95 (then compress)
    python benchmarks/clinical.py transfer                   # 500 synthetic images: from the full run's backbone
                                                             # vs from scratch

Runs live in benchmarks/.cache/clinical/; each prints its metrics.json summary. Accuracy only: no
timing, so they may run niced beside other work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "clinical"
DATA = Path(__import__("os").environ.get("MEDTK_DATA_DIR", ROOT.parent / "shared" / "data")) / "pneumoniamnist.npz"
SMALL = 500


def small_npz() -> Path:
    """PneumoniaMNIST with a stratified 500-image training split; val and test kept whole."""
    target = CACHE / "small" / "pneumoniamnist.npz"  # same stem: the catalogue's finding class applies
    if target.is_file():
        return target
    arrays = dict(np.load(DATA))
    labels = arrays["train_labels"].ravel()
    rng = np.random.default_rng(0)
    picked = np.sort(np.concatenate([
        rng.permutation(np.flatnonzero(labels == k))[: round(SMALL * np.mean(labels == k))] for k in (0, 1)
    ]))
    arrays["train_images"], arrays["train_labels"] = arrays["train_images"][picked], arrays["train_labels"][picked]
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    return target


def train(out: Path, data: str, *extra: str) -> dict:
    command = [sys.executable, "-m", "medtk", "-q", "train", "--data", data, "--out", str(out), "--input-size", "64",
               *extra]
    if not (out / "metrics.json").is_file():
        if out.exists():
            import shutil

            shutil.rmtree(out)
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)
    metrics = json.loads((out / "metrics.json").read_text())
    print(json.dumps({"run": out.name, "test": summary(metrics["test"])}, indent=1), flush=True)
    return metrics


def summary(test: dict) -> dict:
    point = test.get("operating_point") or {}
    return {"auc": test["auc"], "auc_ci": (test.get("ci") or {}).get("auc"), "accuracy_argmax": test["accuracy"],
            "accuracy_at_op": point.get("accuracy"), "threshold": point.get("threshold"), "rule": point.get("rule"),
            "sensitivity": point.get("sensitivity"), "specificity": point.get("specificity"),
            "sensitivity_ci": (test.get("ci") or {}).get("sensitivity"),
            "specificity_ci": (test.get("ci") or {}).get("specificity"),
            "sensitivity_argmax": test.get("sensitivity_argmax"), "specificity_argmax": test.get("specificity_argmax"),
            "calibration": test.get("calibration")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("small-data", "full", "transfer"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    if args.what == "small-data":
        data = str(small_npz())
        for seed in args.seeds:
            for flag in ("--no-precise-batchnorm", "--precise-batchnorm"):
                train(CACHE / f"small{flag.replace('--', '-')}-seed{seed}", data, "--epochs", "10", "--seed", str(seed), flag)
    elif args.what == "full":
        train(CACHE / "full", str(DATA), "--epochs", "18", "--batch-size", "64", "--patience", "6", "--no-flip",
              "--operating-point", "sensitivity:0.95")
    else:
        backbone = CACHE / "full"
        if not (backbone / "model.keras").is_file():
            sys.exit(f"{backbone}: run `python benchmarks/clinical.py full` first")
        for seed in args.seeds:
            train(CACHE / f"transfer-synthetic-seed{seed}", "synthetic:500", "--epochs", "6", "--head-epochs", "2",
                  "--weights", str(backbone), "--seed", str(seed))
            train(CACHE / f"scratch-synthetic-seed{seed}", "synthetic:500", "--epochs", "8", "--seed", str(seed))


if __name__ == "__main__":
    main()
