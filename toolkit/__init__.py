"""medtk: from medical images to a measured, explainable classifier on scanner-side hardware.

Importing `medtk` is light: heavy libraries (TensorFlow, TFMOT, matplotlib) load inside the commands
that need them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
