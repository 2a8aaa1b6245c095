"""Exact rewrites of the classifier head (`cam`, a 1x1 convolution) that cost nothing at run time.

The logits are GAP(cam) and `cam` is linear, so both rewrites below change no op in the graph, no
runtime code and no metadata a device must apply:

- **Centring** (`center_class_maps`): softmax ignores anything added to every class's logit alike, so
  the part of the class maps that all classes share never moves a probability, yet it shapes every
  map a clinician sees: a binary model's "lesion" map could peak on the body outline, which counts the
  same for "normal". Subtracting the class mean from the kernel and bias removes it: probabilities are
  unchanged and each class's CAM becomes exactly its per-cell contribution to the decision (for two
  classes, half the lesion-minus-normal logit map). On the demo's phantoms this alone moved the CAM's
  pointing game from 0.47 to 0.62 (benchmarks/RESULTS.md, issue 13).
- **Temperature** (`fold_temperature`): dividing kernel and bias by T divides the CAM and the logits by
  T, so `probs` becomes softmax(logits / T). The CAM keeps its shape (every map is scaled by the same
  1/T). Record T in the model metadata (`calibration`), and choose the operating point on the folded
  model's probabilities, since a threshold on p moves with T.
"""

from __future__ import annotations

import math

import numpy as np

from medtk.errors import ConfigError, ModelError

CAM_LAYER = "cam"


def center_class_maps(model) -> None:
    """Subtract the mean over classes from the `cam` layer's kernel and bias, in place (see above)."""
    layer = _cam_layer(model)
    layer.set_weights([np.asarray(w) - np.asarray(w).mean(axis=-1, keepdims=True) for w in layer.get_weights()])


def fold_temperature(model, temperature: float) -> None:
    """Divide the `cam` layer's kernel and bias by `temperature`, in place."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")
    layer = _cam_layer(model)
    layer.set_weights([np.asarray(w) / np.asarray(temperature, dtype=np.asarray(w).dtype) for w in layer.get_weights()])


def _cam_layer(model):
    try:
        return model.get_layer(CAM_LAYER)
    except ValueError:
        raise ModelError(f"model {model.name!r} has no {CAM_LAYER!r} layer: not a medtk classifier") from None
