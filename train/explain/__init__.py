"""Explanations on the workstation: CAM, Grad-CAM, Grad-CAM++ and feature maps (maps.py), their pictures
(render.py), and localisation scored against lesion masks for a run (localize.py) by the TensorFlow-free
scores the report shares (scoring.py)."""

from medtk.train.explain.localize import localize_run
from medtk.train.explain.maps import (
    METHODS,
    Explanation,
    FeatureMaps,
    check_layer,
    explain,
    explainable_layers,
    feature_maps,
    finer_layer,
    last_feature_layer,
)

__all__ = [
    "METHODS",
    "Explanation",
    "FeatureMaps",
    "check_layer",
    "explain",
    "explainable_layers",
    "feature_maps",
    "finer_layer",
    "last_feature_layer",
    "localize_run",
]
