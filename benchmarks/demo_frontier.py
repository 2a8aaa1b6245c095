"""The demo's minutes against its quality: the whole `medtk demo` at fewer epochs (issue 25's frontier).

    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/demo_frontier.py --epochs 12,16,20 --out DIR

Each point is the demo as a newcomer runs it (`medtk.pipeline.run_pipeline` with `DEMO`'s settings, only
`epochs` changed; the plateau schedule and early stopping see the shorter run as they would): train, eval,
compress --int8, bench, explain, report, into DIR/epochs-N. One row per point, against the issue's bars
(test AUC >= 0.95, deployed CAM pointing game >= 0.90 on a >= 6x6 grid, deployed int8 within 0.01 AUC
of float32): minutes in all and in the epochs (steps, BatchNorm pass, validation, checkpointing), the
median epoch, test AUC (Keras), the deployed variant and its test AUC minus float32's (TFLite,
compress.json), the pointing game of the Keras CAM and of the deployed file (localization.json). One seed
per point: the data and initialisation are the demo's.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]


def point(epochs: int, out: Path) -> dict[str, object]:
    from medtk.pipeline import DEMO, run_pipeline
    from medtk.run import Run

    result = run_pipeline(dataclasses.replace(DEMO, epochs=epochs), out, force=True, echo=print)
    run = Run(out)
    timings = run.timings()
    walls = [epoch.total.wall for epoch in timings.epochs]
    compression = run.compression()
    deployed = result.recommended
    variant = compression.variant(deployed) if deployed else None
    localization = run.localization()
    cam = localization.score("cam") if localization else None
    exported = localization.score(f"export:{deployed}") if localization and deployed else None
    return {
        "epochs": epochs, "minutes": result.seconds / 60, "epoch_minutes": sum(walls) / 60,
        "epoch": statistics.median(walls), "test_auc": run.metrics().test.auc, "deployed": deployed,
        "delta_auc": variant.delta_auc if variant else None,
        "pointing_keras": cam.pointing_game if cam else None,
        "pointing_deployed": exported.pointing_game if exported else None,
        "grid": "x".join(map(str, cam.grid)) if cam else "-",
    }


def row(p: dict[str, object]) -> str:
    def number(value: object, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    meets = (p["test_auc"] is not None and p["test_auc"] >= 0.95 and p["pointing_deployed"] is not None
             and p["pointing_deployed"] >= 0.90 and p["delta_auc"] is not None and abs(p["delta_auc"]) <= 0.01)
    return (f"| {p['epochs']} | {p['minutes']:.1f} | {p['epoch_minutes']:.1f} | {p['epoch']:.0f} | {number(p['test_auc'])} | "
            f"{p['deployed']} | {number(p['delta_auc'], 4)} | {number(p['pointing_keras'])} / "
            f"{number(p['pointing_deployed'])} ({p['grid']}) | {'yes' if meets else 'no'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="12,16,20", help="comma-separated epoch counts, one demo each")
    parser.add_argument("--out", type=Path, required=True, help="a folder for the run folders (epochs-N)")
    args = parser.parse_args()
    counts = [int(n) for n in re.split(r"[,\s]+", args.epochs.strip()) if n]
    rows = []
    for epochs in counts:
        rows.append(row(point(epochs, args.out / f"epochs-{epochs}")))
        print(rows[-1], flush=True)
    print("\n| epochs | minutes in all | minutes in the epochs | median epoch s | test AUC | deployed | deployed - float32 AUC "
          "| pointing game Keras / deployed (grid) | meets the bars |")
    print("|---:|---:|---:|---:|---:|---|---:|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
