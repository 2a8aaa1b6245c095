"""medtk.clinical: what a classifier's output means for a clinician, measured the same way for every model.

The finding class (finding.py), the operating point chosen on validation (operating_point.py),
threshold-free and argmax metrics (classification.py), stratified bootstrap intervals (bootstrap.py),
temperature scaling (calibration.py), and one split's metrics put together (split.py). The data types
they produce live in `medtk.schema.metrics`, so the run folder's documents import no computation.
"""

from medtk.clinical.bootstrap import bootstrap_intervals
from medtk.clinical.calibration import decide_temperature, fit_temperature, measure_calibration
from medtk.clinical.classification import classification_metrics
from medtk.clinical.finding import Finding, resolve_finding
from medtk.clinical.operating_point import at_threshold, choose_operating_point, parse_rule
from medtk.clinical.split import split_metrics

__all__ = [
    "Finding",
    "at_threshold",
    "bootstrap_intervals",
    "choose_operating_point",
    "classification_metrics",
    "decide_temperature",
    "fit_temperature",
    "measure_calibration",
    "parse_rule",
    "resolve_finding",
    "split_metrics",
]
