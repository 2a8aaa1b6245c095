"""Fold a fitted temperature into the classifier, so calibrated probabilities cost nothing at run time.

The logits are GAP(cam) and `cam` is a 1x1 convolution, all linear: dividing its kernel and bias by T
divides the CAM and the logits by T, so `probs` becomes softmax(logits / T) with no extra op in the
graph, no runtime change and no metadata the device must apply. The CAM keeps its shape (every map is
scaled by the same 1/T); only its scale changes. Record T in the model metadata (`calibration`), and
choose the operating point on the folded model's probabilities, since a threshold on p moves with T.
"""

from __future__ import annotations

import math

import numpy as np

from medtk.errors import ConfigError, ModelError

CAM_LAYER = "cam"


def fold_temperature(model, temperature: float) -> None:
    """Divide the `cam` layer's kernel and bias by `temperature`, in place."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    try:
        layer = model.get_layer(CAM_LAYER)
    except ValueError:
        raise ModelError(f"model {model.name!r} has no {CAM_LAYER!r} layer: not a medtk classifier") from None
    layer.set_weights([np.asarray(w) / np.asarray(temperature, dtype=np.asarray(w).dtype) for w in layer.get_weights()])
