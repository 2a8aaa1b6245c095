"""The terminal table of `medtk compress`: one row per variant, sizes next to what they cost in quality."""

from __future__ import annotations

from medtk.compress.verdict import compress_verdict
from medtk.schema import CompressReport

COLUMNS = ("variant", "status", "size", "gzip", "ms", "sparsity", "float ops", "val AUC", "AUC", "dAUC", "acc", "thr", "sens",
           "spec", "ECE", "CAM r", "peak", "shift")


def format_table(report: CompressReport) -> str:
    rows = [COLUMNS]
    for entry in report.variants:
        cam = entry.cam_agreement
        rows.append((
            entry.name + (" *" if entry.name in _recommended(report) else ""), entry.status, _size(entry.size_bytes),
            _size(entry.gzip_bytes), _num(entry.latency_ms, 2), f"{entry.sparsity:.2f}", str(len(entry.float_layers)) if entry.float_layers else "",
            _num(entry.val.auc if entry.val else None), _num(entry.test.auc), _signed(entry.delta_auc),
            _num(entry.test.accuracy), _num(entry.test.threshold, 3), _num(entry.test.sensitivity, 3),
            _num(entry.test.specificity, 3), _num(entry.test.ece, 3), _num(cam.correlation if cam else None, 3),
            _num(cam.peak_match if cam else None, 2), _num(cam.mean_peak_shift if cam else None, 2),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    reference = report.reference
    keras_auc = reference.keras_test.auc if reference.keras_test else None
    lines.append(
        f"reference: float32 TFLite (test AUC {_num(reference.test.auc)}); Keras model test AUC "
        f"{_num(keras_auc)} from metrics.json"
    )
    point = report.variants[0].operating_point if report.variants else None
    if point is not None:
        lines.append(f"thr: each variant's threshold for {point.rule}, chosen on validation through its own interpreter; "
                     "sens/spec: test at that threshold")
    for label, control in (("accuracy control", report.accuracy_control),
                           ("ONNX accuracy control", report.onnx_accuracy_control)):
        if control is not None:
            lines += _control_lines(label, control)
    gate = report.gate
    other_gates = f", min CAM r {gate.min_cam_correlation:g}" if gate.min_cam_correlation is not None else ""
    if gate.max_cam_peak_shift is not None:
        other_gates += f", max CAM peak shift {gate.max_cam_peak_shift:g} cells"
    if gate.max_ece_increase is not None:
        other_gates += f", max ECE rise {gate.max_ece_increase:g}"
    verdict = compress_verdict(report)
    lines.append(f"gate (max AUC drop {gate.max_auc_drop:g}{other_gates}): {verdict.level.upper()}: {verdict.summary}")
    if report.latency is not None:
        lines.append(f"ms: p50 of one image through the variant's own engine here ({report.latency.host}; "
                     f"{report.latency.threads} thread(s), {report.latency.rounds} alternating rounds)")
    lines.append(f"recommended (* above; {report.recommendation or 'the smallest variant that passes every gate'}): "
                 f"{report.recommended or 'none'}")
    onnx = report.recommended_by_format.get("onnx", "absent")
    if onnx != "absent":
        lines.append(f"recommended .onnx (* above; the same rule among the ONNX variants, measured through ONNX Runtime "
                     f"on the CPU): {onnx or 'none'}")
    for name, reason in report.not_recommended.items():
        lines.append(f"  not {name}: {reason}")
    lines.append(f"note: {report.note}")
    return "\n".join(lines)


def _recommended(report: CompressReport) -> set[str | None]:
    return {report.recommended, *report.recommended_by_format.values()} - {None}


def _size(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _control_lines(label: str, control) -> list[str]:
    """How one accuracy-controlled variant was searched, and why each of its ops stayed float."""
    lines = [
        f"{label} (ranked on {control.held_out_images} held-out training images, decided on validation; "
        f"test never selects): float32 val AUC {_num(control.val_reference)}, full int8 {_num(control.full_int8_val)}"
        f"{_drop(control.full_int8_val_drop)}{_cam(control.full_int8_val_cam)}, budget: upper bound <= "
        f"{control.max_val_drop:g} and the CAM gate at its interval's end; "
        + (f"{len(control.float_layers)} op(s) kept float ({control.ranking} ranking, {control.models_tried} models "
           f"tried): val AUC {_num(control.val)}{_drop(control.val_drop)}{_cam(control.val_cam)}"
           f"{'' if control.within_budget else ', NOT within budget'}"
           if control.float_layers else "int8 within budget, nothing kept float")
    ]
    return lines + [f"  float: {kept.tensor.split(';')[0]}: {kept.reason}" for kept in control.kept_float]


def _cam(cam) -> str:
    """', CAM r ... (95% low ...)' of a validation CAM check, '' when not recorded (older compress.json)."""
    return "" if cam is None else f", {cam.describe()}"


def _drop(drop: tuple[float, float, float] | None) -> str:
    """' (drop D, 95% lo..hi)' of a validation AUC drop, '' when not recorded."""
    return "" if drop is None else f" (drop {drop[0]:.4f}, 95% {drop[1]:.4f}..{drop[2]:.4f})"
