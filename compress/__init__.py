"""medtk.compress: pruning, quantization-aware training and TFLite conversion of a trained run, each
variant measured through the TensorFlow-free runtime (`medtk compress RUN --int8`)."""

from medtk.compress.convert import convert
from medtk.compress.options import CompressOptions
from medtk.compress.workflow import CompressResult, compress_run

__all__ = ["CompressOptions", "CompressResult", "compress_run", "convert"]
