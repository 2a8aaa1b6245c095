"""The terminal summary of a run's metrics: what `medtk train` and `medtk eval` print.

Binary tasks: threshold-free AUC with its interval, then sensitivity/specificity/PPV/NPV at the
operating point (rule and threshold named) with intervals, next to argmax; calibration before/after,
and whether the temperature ships and why (`decide_temperature`'s reason).
"""

from __future__ import annotations

from medtk.schema import Metrics, SplitMetrics
from medtk.schema.metrics import Calibration


def metrics_summary(metrics: Metrics) -> str:
    lines = [f"{'split':<6} {'n':>6} {'AUC':>7} {'acc':>7} {'sens':>7} {'spec':>7} {'F1':>7}"]
    for name in ("val", "test"):
        split = metrics.split(name)
        if split is not None:
            cells = (split.auc, split.accuracy, split.sensitivity, split.specificity, split.f1)
            lines.append(f"{name:<6} {split.n:>6} " + " ".join("    n/a" if v is None else f"{v:7.4f}" for v in cells))
    test = metrics.test
    if test is not None and test.operating_point is not None:
        lines += _clinical_lines(test)
    elif test is not None and test.positive_class is None:
        lines.append("multi-class: decided by the highest probability (argmax); sensitivity/specificity are macro averages")
    if test is not None and test.calibration is not None:
        lines.append(calibration_line(test.calibration))
    return "\n".join(lines)


def _clinical_lines(test: SplitMetrics) -> list[str]:
    point, ci = test.operating_point, test.ci
    lines = [
        f"positive class: {test.positive_class}; operating point {point.rule} -> threshold {point.threshold:.4f} "
        "(chosen on validation)",
        f"test AUC {_value(test.auc)} {_interval(ci.auc if ci else None)}",
    ]
    for label, value, key in (("sensitivity", point.sensitivity, "sensitivity"), ("specificity", point.specificity, "specificity"),
                              ("PPV", point.ppv, "ppv"), ("NPV", point.npv, "npv")):
        lines.append(f"test {label} at the operating point {_value(value)} {_interval(getattr(ci, key) if ci else None)}")
    lines.append(f"at argmax (0.5): sensitivity {_value(test.sensitivity_argmax)}, specificity {_value(test.specificity_argmax)}")
    return lines


def calibration_line(c: Calibration) -> str:
    """Whether the temperature ships and why (the decision's reason), then the test evidence: before -> after
    when applied; the uncalibrated numbers only when not (the model ships with T = 1)."""
    head = c.reason or (f"temperature {c.temperature:.3f} applied" if c.applied else "not applied")
    if not c.applied:
        return f"calibration: {head}; test ECE {c.ece_before:.4f}, Brier {c.brier_before:.4f}"
    return (f"calibration: {head}; test ECE {c.ece_before:.4f} -> {c.ece_after:.4f}, "
            f"Brier {c.brier_before:.4f} -> {c.brier_after:.4f}")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _interval(pair) -> str:
    return "" if pair is None else f"(95% CI {pair[0]:.3f}-{pair[1]:.3f})"
