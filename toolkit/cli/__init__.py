"""The `medtk` command line: a thin shell over the library, one module per command.

Command modules import nothing heavy at the top, so `medtk --help` never loads TensorFlow.
"""

from medtk.cli.app import app, main

__all__ = ["app", "main"]
