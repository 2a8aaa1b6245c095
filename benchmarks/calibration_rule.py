"""Calibration that never makes things worse (issue 22): the old rule (fit T on validation, always apply
it) against `medtk.clinical.decide_temperature` (apply only with enough of each class and a held-out
improvement beyond noise), measured on test ECE (15 bins) and Brier.

    .venv/bin/python benchmarks/calibration_rule.py [--run RUN] [--trials 200]

Synthetic: binary logits whose true calibration is softmax(z / T_true), a validation split of the
given class counts and a 600-image test split, `--trials` seeds per case. `--run`: a trained run's own
validation and test logits (the model's `gap` output times the temperature folded in, i.e. raw).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from medtk.clinical.calibration import brier_score, decide_temperature, expected_calibration_error, fit_temperature, softmax

CASES = (  # name, validation (negatives, positives), T_true
    ("small validation (78 images: 20/58), calibrated model", (20, 58), 1.0),
    ("small validation (78 images: 20/58), over-confident model (T 1.5)", (20, 58), 1.5),
    ("medium validation (60/60), calibrated model", (60, 60), 1.0),
    ("large validation (300/300), over-confident model (T 2)", (300, 300), 2.0),
)


def _draw(rng, counts: tuple[int, int], t_true: float) -> tuple[np.ndarray, np.ndarray]:
    n = 30 * sum(counts)
    margin = rng.normal(0.5, 2.0, n) * t_true
    y = (rng.random(n) < 1 / (1 + np.exp(-margin / t_true))).astype(int)
    keep = np.concatenate([np.flatnonzero(y == k)[:count] for k, count in enumerate(counts)])
    return np.stack([np.zeros(len(keep)), margin[keep]], axis=1), y[keep]


def _scores(logits, labels, t: float) -> tuple[float, float]:
    p = softmax(logits, t)
    return expected_calibration_error(p, labels), brier_score(p, labels)


def synthetic(trials: int) -> list[dict]:
    rows = []
    for name, counts, t_true in CASES:
        none, old, new, applied, worse_old, worse_new = [], [], [], 0, 0, 0
        for seed in range(trials):
            rng = np.random.default_rng(seed)
            val_z, val_y = _draw(rng, counts, t_true)
            test_z, test_y = _draw(rng, (300, 300), t_true)
            decision = decide_temperature(val_z, val_y, seed=seed)
            base = _scores(test_z, test_y, 1.0)
            o = _scores(test_z, test_y, fit_temperature(val_z, val_y))
            w = _scores(test_z, test_y, decision.temperature)
            none.append(base), old.append(o), new.append(w)
            applied += decision.applied
            worse_old += o[0] > base[0] and o[1] > base[1]
            worse_new += w[0] > base[0] and w[1] > base[1]
        rows.append({"case": name, "trials": trials, "uncalibrated": np.mean(none, 0).round(4).tolist(),
                     "old rule": np.mean(old, 0).round(4).tolist(), "new rule": np.mean(new, 0).round(4).tolist(),
                     "new rule applied T": f"{applied}/{trials}", "old worse (ECE and Brier)": f"{worse_old}/{trials}",
                     "new worse (ECE and Brier)": f"{worse_new}/{trials}"})
    return rows


def real_run(run_dir: str) -> dict:
    from pathlib import Path

    from medtk.run import Run
    from medtk.train.evaluate import predict_outputs
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    run = Run(Path(run_dir))
    model = load_classifier(run.require_model())
    folded = run.training().temperature
    dataset = run.dataset()
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    raw = {}
    for split in ("val", "test"):
        _, logits = predict_outputs(model, prepare_split(dataset.splits[split], size, channels))
        raw[split] = (logits * folded, np.asarray(dataset.splits[split].labels))
    decision = decide_temperature(*raw["val"], seed=run.config().data.seed)
    test_z, test_y = raw["test"]
    return {"run": run.root.name, "val class counts": np.bincount(raw["val"][1]).tolist(),
            "fitted T": round(fit_temperature(*raw["val"]), 3), "decision": decision.reason,
            "test ECE, Brier uncalibrated": [round(v, 4) for v in _scores(test_z, test_y, 1.0)],
            "old rule (fitted T applied)": [round(v, 4) for v in _scores(test_z, test_y, fit_temperature(*raw["val"]))],
            "new rule": [round(v, 4) for v in _scores(test_z, test_y, decision.temperature)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    for row in synthetic(args.trials):
        print(json.dumps(row))
    if args.run:
        print(json.dumps(real_run(args.run)))


if __name__ == "__main__":
    main()
