"""The terminal summary of a run's metrics: what `medtk train` and `medtk eval` print.

Binary tasks: threshold-free AUC with its interval, then sensitivity/specificity/PPV/NPV at the
operating point (rule and threshold named) with intervals, next to argmax; calibration before/after.
"""

from __future__ import annotations

from medtk.schema import Metrics, SplitMetrics


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
    if test.calibration is not None:
        c = test.calibration
        lines.append(f"calibration: temperature {c.temperature:.3f}; test ECE {c.ece_before:.4f} -> {c.ece_after:.4f}, "
                     f"Brier {c.brier_before:.4f} -> {c.brier_after:.4f}")
    return lines


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _interval(pair) -> str:
    return "" if pair is None else f"(95% CI {pair[0]:.3f}-{pair[1]:.3f})"
