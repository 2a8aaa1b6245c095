"""Which variants pass the gates and which one to deploy: pure decisions on what compress measured.

No TensorFlow and no I/O: each function takes the measured `VariantResult`s (and the options) and
returns a decision. Every comparison is against the reference variant (float32), found by its name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medtk.compress.options import SPARSITY_TOLERANCE, CompressOptions
from medtk.runtime.metadata import GateFailure, QualityGate
from medtk.schema import Gate, VariantResult
from medtk.variants import FORMATS, REFERENCE, format_of, get_variant, precision_of


def reference_entry(entries: list[VariantResult] | tuple[VariantResult, ...]) -> VariantResult:
    """The float32 variant, which every delta and gate is measured against."""
    for entry in entries:
        if entry.name == REFERENCE:
            return entry
    names = ", ".join(entry.name for entry in entries) or "none"
    raise ValueError(f"no {REFERENCE} variant among the measured variants ({names}): every delta and gate is "
                     f"measured against {REFERENCE}")


def with_deltas(entries: list[VariantResult]) -> list[VariantResult]:
    """Each entry with its test AUC, accuracy and sensitivity differences to the reference variant."""
    reference = reference_entry(entries).test
    return [
        replace(entry, delta_auc=_delta(entry.test.auc, reference.auc),
                delta_accuracy=_delta(entry.test.accuracy, reference.accuracy),
                delta_sensitivity=_delta(entry.test.sensitivity, reference.sensitivity))
        for entry in entries
    ]


def apply_gates(entries: list[VariantResult], options: CompressOptions,
                sparsity_after_qat: float | None) -> tuple[list[VariantResult], Gate, dict[str, list[str]]]:
    """Each entry marked "failed" where a gate fails it (never the reference), the gate record, and
    the failure messages per variant."""
    failures = {name: [message for _, message in checks]
                for name, checks in _failed_checks(entries, options, sparsity_after_qat).items()}
    gated = [replace(entry, status="failed") if entry.name in failures else entry for entry in entries]
    messages = tuple(message for entry in entries for message in failures.get(entry.name, []))
    gate = Gate(max_auc_drop=options.max_auc_drop, passed=not messages, failures=messages,
                min_cam_correlation=options.min_cam_correlation, max_cam_peak_shift=options.max_cam_peak_shift,
                max_ece_increase=options.max_ece_increase)
    return gated, gate, failures


def quality_gates(entries: list[VariantResult], options: CompressOptions,
                  sparsity_after_qat: float | None) -> dict[str, QualityGate]:
    """Each gated variant's outcome as its model file records it (the reference is not gated): the same
    checks as `apply_gates`, as measured value against limit."""
    failed = _failed_checks(entries, options, sparsity_after_qat)
    return {entry.name: QualityGate(passed=entry.name not in failed,
                                    failures=tuple(check for check, _ in failed.get(entry.name, ())))
            for entry in entries if entry.name != REFERENCE}


def _failed_checks(entries: list[VariantResult], options: CompressOptions,
                   sparsity_after_qat: float | None) -> dict[str, list[tuple[GateFailure, str]]]:
    """Per variant that fails a gate: (what was measured against which limit, the message)."""
    failures: dict[str, list[tuple[GateFailure, str]]] = {}
    reference_ece = next((entry.test.ece for entry in entries if entry.name == REFERENCE), None)
    for entry in entries:
        if entry.name == REFERENCE:
            continue
        if entry.delta_auc is None:
            failures.setdefault(entry.name, []).append((GateFailure("max_auc_drop", None, options.max_auc_drop),
                f"{entry.name}: test AUC undefined (one class in the test split), the AUC gate cannot pass"))
        elif -entry.delta_auc > options.max_auc_drop:
            failures.setdefault(entry.name, []).append((GateFailure("max_auc_drop", -entry.delta_auc, options.max_auc_drop),
                f"{entry.name}: test AUC {entry.test.auc:.4f} is {-entry.delta_auc:.4f} below float32 "
                f"(--max-auc-drop {options.max_auc_drop:g})"
            ))
        if options.max_sensitivity_drop is not None and entry.delta_sensitivity is not None \
                and -entry.delta_sensitivity > options.max_sensitivity_drop:
            failures.setdefault(entry.name, []).append((
                GateFailure("max_sensitivity_drop", -entry.delta_sensitivity, options.max_sensitivity_drop),
                f"{entry.name}: test sensitivity at the operating point {entry.test.sensitivity:.4f} is "
                f"{-entry.delta_sensitivity:.4f} below float32 (--max-sensitivity-drop {options.max_sensitivity_drop:g})"
            ))
        cam = entry.cam_agreement
        if options.min_cam_correlation is not None and cam is not None and cam.correlation is not None \
                and cam.correlation < options.min_cam_correlation:
            failures.setdefault(entry.name, []).append((
                GateFailure("min_cam_correlation", cam.correlation, options.min_cam_correlation),
                f"{entry.name}: CAM correlation with float32 {cam.correlation:.3f} on the test images is below "
                f"--min-cam-correlation {options.min_cam_correlation:g}"
            ))
        if options.max_cam_peak_shift is not None and cam is not None and cam.mean_peak_shift is not None \
                and cam.mean_peak_shift > options.max_cam_peak_shift:
            failures.setdefault(entry.name, []).append((
                GateFailure("max_cam_peak_shift", cam.mean_peak_shift, options.max_cam_peak_shift),
                f"{entry.name}: the CAM peak moved {cam.mean_peak_shift:.2f} cells from float32's on average on the "
                f"test images (--max-cam-peak-shift {options.max_cam_peak_shift:g}): the map points elsewhere"
            ))
        if options.max_ece_increase is not None and reference_ece is not None and entry.test.ece is not None \
                and entry.test.ece - reference_ece > options.max_ece_increase:
            increase = entry.test.ece - reference_ece
            failures.setdefault(entry.name, []).append((
                GateFailure("max_ece_increase", round(increase, 4), options.max_ece_increase),
                f"{entry.name}: test calibration error (ECE) {entry.test.ece:.3f} is {increase:.3f} above float32's "
                f"{reference_ece:.3f} (--max-ece-increase {options.max_ece_increase:g}): its probabilities are "
                "further from the observed frequencies than float32's"
            ))
    compressed = options.compressed_variant()
    if sparsity_after_qat is not None and abs(sparsity_after_qat - options.prune_sparsity) > SPARSITY_TOLERANCE:
        failures.setdefault(compressed, []).append((
            GateFailure("max_sparsity_deviation", round(abs(sparsity_after_qat - options.prune_sparsity), 4),
                        SPARSITY_TOLERANCE),
            f"{compressed}: sparsity {sparsity_after_qat:.3f} after QAT, target {options.prune_sparsity:.3f} "
            f"+/- {SPARSITY_TOLERANCE}"
        ))
    return failures


@dataclass(frozen=True)
class Target:
    """What the recommendation is for. `integer`: --int8 asked for an integer model; `runs`: the
    precisions the target device's accelerator executes (its profile's `runs`; empty = any, a CPU)."""

    integer: bool = False
    device: str | None = None
    runs: tuple[str, ...] = ()

    def runs_variant(self, entry: VariantResult) -> bool:
        """An accelerator that runs only int8 runs no float op: int8_mixed's float layers would fall back."""
        if not self.runs:
            return True
        return precision_of(entry.name) in self.runs and not (entry.float_layers and "float32" not in self.runs)


# Latency first, measured on the compress host through each variant's own engine (compress/latency.py);
# variants within LATENCY_TIE of the fastest are as fast as a shared host can tell, and the smaller file wins.
LATENCY_TIE = 0.10
RULE = ("the fastest passing variant the target runs{integer}, by latency measured on this host (p50 through its own "
        "engine; within 10% of the fastest, the smaller file); the device itself: `medtk bench RUN --device D`")
SIZE_RULE = ("the smallest passing variant the target runs{integer}, by file size (no latency was measured; "
             "`medtk bench RUN` measures it)")


def recommend(entries: list[VariantResult], failures: dict[str, list[str]] | None = None,
              target: Target = Target()) -> tuple[str | None, dict[str, str]]:
    """The variant to deploy (None when none fits) and why each other variant was not chosen.

    Eligible: passes every gate (`failures`: the gate's messages per variant, `apply_gates`) and runs on
    the target. With --int8 an integer variant that passes is chosen over any float-activation one
    (`dynamic`, `float16`), however much faster or smaller: an integer accelerator cannot run the float
    one. Then the fastest (`RULE`), or the smallest file where a latency is missing (`SIZE_RULE`)."""
    failures = failures or {}
    passed = [entry for entry in entries if entry.passed and not failures.get(entry.name)]
    eligible = [entry for entry in passed if target.runs_variant(entry)]
    integer = [entry for entry in eligible if _is_integer(entry.name)]
    pool = integer if target.integer and integer else eligible
    chosen = _fastest(pool) if pool else None
    reasons = {}
    for entry in entries:
        if chosen is not None and entry.name == chosen.name:
            continue
        if failures.get(entry.name) or not entry.passed:
            reasons[entry.name] = "failed the gate: " + ("; ".join(failures.get(entry.name, [])) or entry.status)
        elif not target.runs_variant(entry):
            kind = f"{len(entry.float_layers)} op(s) kept float" if entry.float_layers else precision_of(entry.name)
            reasons[entry.name] = (f"passed every gate but {target.device}'s accelerator runs only "
                                   f"{'/'.join(target.runs)} ({entry.name}: {kind})")
        elif pool is integer and target.integer and not _is_integer(entry.name):
            reasons[entry.name] = (f"passed every gate but computes in float (not an integer model); --int8 asked "
                                   f"for one and {chosen.name} passes every gate")
        else:
            reasons[entry.name] = "passed every gate but " + _slower_or_larger(entry, chosen, _timed(pool))
    return (chosen.name if chosen else None), reasons


def _timed(pool: list[VariantResult]) -> bool:
    """Whether latency decides: every candidate was timed (an older compress.json has no latency)."""
    return bool(pool) and all(entry.latency_ms is not None for entry in pool)


def _fastest(pool: list[VariantResult]) -> VariantResult:
    if not _timed(pool):
        return min(pool, key=lambda entry: entry.size_bytes)
    fastest = min(entry.latency_ms for entry in pool)
    as_fast = [entry for entry in pool if entry.latency_ms <= fastest * (1 + LATENCY_TIE)]
    return min(as_fast, key=lambda entry: (entry.size_bytes, entry.latency_ms))


def _slower_or_larger(entry: VariantResult, chosen: VariantResult, timed: bool) -> str:
    sizes = f"{entry.size_bytes / 1e6:.2f} MB vs {chosen.size_bytes / 1e6:.2f} MB"
    if not timed or entry.latency_ms is None or chosen.latency_ms is None:
        return f"is larger than {chosen.name} ({sizes})"
    times = f"p50 {entry.latency_ms:.2f} ms vs {chosen.latency_ms:.2f} ms on this host"
    if entry.latency_ms > chosen.latency_ms * (1 + LATENCY_TIE):
        return f"is slower than {chosen.name} ({times})"
    return f"is as fast as {chosen.name} within {LATENCY_TIE:.0%} ({times}) and larger ({sizes})"


def recommend_per_format(entries: list[VariantResult], failures: dict[str, list[str]] | None = None,
                         target: Target = Target()) -> tuple[dict[str, str | None], dict[str, str]]:
    """`recommend` within each file format ({"tflite": name, "onnx": name or None}) and the reasons: a
    `.tflite` and an `.onnx` run on different engines and devices, so neither is chosen over the other."""
    chosen, reasons = {}, {}
    for kind in FORMATS:
        mine = [entry for entry in entries if format_of(entry.name) == kind]
        if kind != "tflite" and not mine:
            continue
        chosen[kind], why = recommend(mine, failures, target)
        reasons.update(why)
    return chosen, reasons


def recommendation_rule(target: Target, timed: bool = True) -> str:
    """The sentence compress.json and the table give for how `recommended` was chosen (`timed`: whether
    the variants' latencies were measured)."""
    extra = ", an integer one first (--int8)" if target.integer else ""
    if target.runs:
        extra += f"; {target.device} runs only {'/'.join(target.runs)}"
    return (RULE if timed else SIZE_RULE).format(integer=extra)


def unmet_request(entries: tuple[VariantResult, ...] | list[VariantResult], *, int8: bool) -> str | None:
    """Why the command failed what it was asked for, or None when a compressed variant of the requested
    kind (an integer one with --int8) passes every gate. A failing variant beside a passing one is a
    finding that compress.json and the table report, not a failed command: the user deploys the
    recommended one. Without any, --int8 delivered nothing an integer accelerator can run (exit 3)."""
    wanted = [entry for entry in entries if entry.name != REFERENCE and (not int8 or _is_integer(entry.name))
              and format_of(entry.name) == "tflite"]
    if any(entry.passed for entry in wanted):
        return None
    return "no int8 variant passes every gate" if int8 else "no compressed variant passes every gate"


def _delta(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else round(value - reference, 6)


def _is_integer(name: str) -> bool:
    variant = get_variant(name)
    return variant is not None and variant.integer
