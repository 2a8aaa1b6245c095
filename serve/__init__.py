"""medtk.serve: the scanner-side AI node (`medtk serve`), DICOM and HTTP in, findings out.

    from medtk.serve import ServeConfig, ServeNode
    with ServeNode(ServeConfig(model="model.tflite", spool="spool")) as node:
        ...

Needs the `serve` extra (pynetdicom, highdicom, FastAPI, uvicorn, prometheus_client). Names load on
first use, so importing the package is light; see docs/SERVE.md.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ServeConfig": "medtk.serve.config",
    "Destination": "medtk.serve.config",
    "ServeNode": "medtk.serve.node",
}

__all__ = ["ServeConfig", "Destination", "ServeNode"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medtk.serve' has no attribute {name!r}")
