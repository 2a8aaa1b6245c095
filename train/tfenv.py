"""The one place TensorFlow is imported from, so Keras 2 (tf-keras) is selected before TF loads.

TFMOT works only with Keras 2; `TF_USE_LEGACY_KERAS=1` must be set before TensorFlow is first
imported, and that happens here (not as an import side effect of some module).
"""

from __future__ import annotations

import os
from types import ModuleType

from medtk.errors import MissingExtraError

_INSTALL_HINT = 'this command needs the training extra: pip install "medtk[train]"'


def tensorflow() -> ModuleType:
    """Import TensorFlow with Keras 2 selected and its C++ logging quietened."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingExtraError(_INSTALL_HINT) from None
    return tf


def keras() -> ModuleType:
    """The Keras 2 package (tf_keras) that TFMOT works with."""
    tensorflow()
    try:
        import tf_keras
    except ImportError:
        raise MissingExtraError(_INSTALL_HINT) from None
    return tf_keras


def tfmot() -> ModuleType:
    keras()
    try:
        import tensorflow_model_optimization as tfmot_module
    except ImportError:
        raise MissingExtraError(_INSTALL_HINT) from None
    return tfmot_module
