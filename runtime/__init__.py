"""medtk.runtime: run a medtk `.tflite` model without TensorFlow (label, probabilities, CAM).

    from medtk.runtime import Classifier
    prediction = Classifier("model_int8.tflite").predict("chest.png")

Names load on first use (PEP 562), so `import medtk.runtime` does not import OpenCV or an interpreter.
"""

from __future__ import annotations

import importlib

from medtk.errors import MedtkError, ModelError, RuntimeInputError

_LAZY = {
    "Classifier": "medtk.runtime.classifier",
    "FailedGateWarning": "medtk.runtime.classifier",
    "Prediction": "medtk.runtime.prediction",
    "JSON_DIGITS": "medtk.runtime.prediction",
    "overlay": "medtk.runtime.cam",
    "ModelMetadata": "medtk.runtime.metadata",
    "read_metadata": "medtk.runtime.metadata",
    "Decoded": "medtk.runtime.pixels",
    "DEFAULT_MAX_PIXELS": "medtk.runtime.limits",
    "ImageHeader": "medtk.runtime.headers",
    "ImageKind": "medtk.runtime.headers",
    "check_header": "medtk.runtime.inputs",
    "load_decoded": "medtk.runtime.inputs",
    "load_dicom_dataset": "medtk.runtime.inputs",
    "default_threads": "medtk.runtime.backend",
}

__all__ = [
    "Classifier",
    "FailedGateWarning",
    "Prediction",
    "JSON_DIGITS",
    "overlay",
    "ModelMetadata",
    "read_metadata",
    "Decoded",
    "DEFAULT_MAX_PIXELS",
    "ImageHeader",
    "ImageKind",
    "check_header",
    "load_decoded",
    "load_dicom_dataset",
    "default_threads",
    "MedtkError",
    "ModelError",
    "RuntimeInputError",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medtk.runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
