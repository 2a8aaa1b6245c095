"""The run folder's JSON files as versioned dataclasses (see docs/ARCHITECTURE.md, "Run folder").

Every stage writes these with `to_json()` and reads them with `from_json()`; nothing reads them as
raw dicts. The bench document lives with bench (`medtk.runtime.bench`), which must stay light.
"""

from medtk.schema.compress import CamAgreement, CompressReport, CompressionSteps, Gate, Headline, Reference, VariantResult
from medtk.schema.data import DataSummary
from medtk.schema.metrics import BootstrapIntervals, Calibration, ClassMetrics, Metrics, OperatingPointMetrics, SplitMetrics
from medtk.schema.training import TrainingSummary

__all__ = [
    "BootstrapIntervals",
    "Calibration",
    "CamAgreement",
    "ClassMetrics",
    "CompressReport",
    "CompressionSteps",
    "DataSummary",
    "Gate",
    "Headline",
    "Metrics",
    "OperatingPointMetrics",
    "Reference",
    "SplitMetrics",
    "TrainingSummary",
    "VariantResult",
]
