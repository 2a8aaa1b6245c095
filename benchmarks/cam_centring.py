"""Pointing game of a run's raw class map against its centred map (issue 13, `train/head_folds.py`).

    .venv/bin/python benchmarks/cam_centring.py RUN [RUN ...]

For a run trained before medtk centred the class maps, the lesion class's `cam` output still holds
the part every class shares; its centred map (lesion minus the class mean) is the lesion's share of
the decision. Both are scored on the run's test lesions exactly like `medtk explain --localization`
(`medtk.train.explain.scoring.score_maps`). A run trained with centring prints the same number twice.
"""

from __future__ import annotations

import sys

import numpy as np


def lesion_batch(folder: str):
    """(Keras model, the run's test images with a lesion mask, those images prepared as the model's batch)."""
    from medtk.run import Run
    from medtk.runtime.imaging import prepare_input
    from medtk.train.explain.localize import lesion_images
    from medtk.train.model import load_classifier

    run = Run(folder)
    model = load_classifier(run.require_model())
    _, _, data = lesion_images(run)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    return model, data, np.stack([prepare_input(image, size, channels) for image in data.images])


def main(runs: list[str]) -> int:
    from medtk.train.explain.scoring import score_maps

    for folder in runs:
        model, data, batch = lesion_batch(folder)
        _, cams = model.predict(batch.astype(np.float32), batch_size=16, verbose=0)
        target = data.lesion_class
        for name, maps in (("raw", cams[..., target]), ("centred", cams[..., target] - cams.mean(axis=-1))):
            scored = score_maps(list(maps), data.masks)
            print(f"{folder}: {name:8s} pointing game {scored.scores.pointing_game:.3f} "
                  f"(chance {scored.chance.pointing_game:.3f}), energy {scored.scores.energy:.3f}, "
                  f"IoU {scored.scores.iou:.3f}, {scored.images} lesions")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
