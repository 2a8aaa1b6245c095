"""What the smaller precise-BatchNorm pass before each validation costs in validation AUC (issue 25).

    .venv/bin/python benchmarks/batchnorm_subsample.py RUN [--counts 128,256] [--seeds 5]

`medtk train` recomputes BatchNorm statistics before every validation on at most
`medtk.train.fit.EPOCH_BATCHNORM_IMAGES` random training images (the pass after training uses all of them).
This loads RUN's model, recomputes the statistics over all training images and measures validation AUC, then
over `--seeds` random subsets of each count: the difference is how far an epoch's val AUC, which picks the
best checkpoint and drives early stopping, moves because the pass saw a subset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--counts", default="128,256")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    if args.seeds < 1 or min(counts) < 1:
        parser.error("--counts and --seeds must be >= 1")

    from sklearn.metrics import roc_auc_score

    from medtk.run import Run
    from medtk.train.batchnorm import precise_batchnorm
    from medtk.train.evaluate import predict_split
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    run = Run(args.run)
    config = run.config()
    size, channels, batch = config.model.input_size, config.model.channels, config.train.batch_size
    data = run.dataset()
    train = prepare_split(data.splits["train"], size, channels)
    model = load_classifier(run.require_model())

    def val_auc() -> float:
        probs, _ = predict_split(model, data.splits["val"], size, channels)
        return float(roc_auc_score(data.splits["val"].labels, probs[:, -1]))

    precise_batchnorm(model, train, batch_size=batch, seed=0)
    reference = val_auc()
    print(f"{args.run}: all {len(train)} training images: val AUC {reference:.4f}")
    print("| images in the pass | val AUC, mean | minus all images': mean | min | max |")
    print("|---:|---:|---:|---:|---:|")
    for count in counts:
        aucs = []
        for seed in range(args.seeds):
            picked = np.sort(np.random.default_rng(seed).permutation(len(train))[:count])
            precise_batchnorm(model, train[picked], batch_size=batch, seed=seed)
            aucs.append(val_auc())
        shift = np.array(aucs) - reference
        print(f"| {min(count, len(train))} | {np.mean(aucs):.4f} | {shift.mean():+.4f} | {shift.min():+.4f} | {shift.max():+.4f} |")


if __name__ == "__main__":
    main()
