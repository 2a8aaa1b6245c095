"""Accuracy benchmark (issue 2): ResNet50 trained by `medtk train` on PneumoniaMNIST on this machine.

    python benchmarks/train_accuracy.py [--data ../shared/data/pneumoniamnist.npz] [--out benchmarks/.cache/pneumonia-resnet50]

Trains from scratch (no ImageNet weights can be downloaded here), prints the test metrics and the
wall time, and leaves the run folder for the compression benchmark.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / ".cache" / "pneumonia-resnet50"))
    parser.add_argument("--input-size", default="64")
    parser.add_argument("--epochs", default="18")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "medtk", "train", "--data", args.data, "--out", str(out), "--arch", "resnet50",
               "--input-size", args.input_size, "--epochs", args.epochs, "--batch-size", "64", "--patience", "6",
               "--no-flip", "--seed", "0"]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    minutes = (time.perf_counter() - started) / 60
    test = json.loads((out / "metrics.json").read_text())["test"]
    print(json.dumps({"minutes": round(minutes, 1), "test_auc": test["auc"], "test_accuracy": test["accuracy"],
                      "sensitivity": test["sensitivity"], "specificity": test["specificity"]}, indent=1))


if __name__ == "__main__":
    main()
