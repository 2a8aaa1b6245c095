"""The one verdict (`medtk.compress.verdict`) that compress's exit code and table, the demo and the
report's headline all show (issue 22): a failing variant beside a passing recommended one is a
warning, FAILED only when compress did not deliver what was asked."""

from __future__ import annotations

from dataclasses import replace

from medtk.compress.options import CompressOptions
from medtk.compress.recommend import Target, apply_gates, recommend
from medtk.compress.report import format_table
from medtk.compress.verdict import compress_verdict
from medtk.schema.compress import CompressReport, Reference
from tests.compress.test_recommend import ENTRIES, MEASURED


def _report(entries, *, int8: bool = True, device: str | None = None, runs: tuple[str, ...] = ()) -> CompressReport:
    options = CompressOptions(int8=int8, min_cam_correlation=0.9, device=device)
    gated, gate, failures = apply_gates(entries, options, None)
    chosen, reasons = recommend(gated, failures, Target(integer=int8, device=device, runs=runs))
    reference = Reference(variant="float32", measured="", test=entries[0].test, test_images=10)
    return CompressReport(reference=reference, variants=tuple(gated), gate=gate, options={"int8": int8, "device": device},
                          recommended=chosen, not_recommended=reasons)


def test_a_failing_variant_beside_a_passing_recommended_one_is_a_warning_naming_it():
    report = _report(ENTRIES)  # int8 and int8_pqat fail; int8_mixed passes and is recommended
    assert not report.gate.passed  # the gate record still says a variant failed ...
    verdict = compress_verdict(report)
    assert verdict.level == "warning" and not verdict.failed  # ... but the command delivered what was asked
    assert verdict.summary.startswith("deploy int8_mixed, which passes every gate; not deployable: ")
    assert "int8: test AUC" in verdict.summary and "int8_pqat: CAM correlation" in verdict.summary
    assert "gate (max AUC drop 0.01, min CAM r 0.9, max CAM peak shift 0.5 cells, max ECE rise 0.05): WARNING: deploy int8_mixed" \
        in format_table(report)


def test_failed_only_when_no_variant_of_the_requested_kind_passes_and_it_says_why():
    report = _report([entry for entry in ENTRIES if entry.name != "int8_mixed"])
    verdict = compress_verdict(report)
    assert verdict.failed
    assert verdict.summary.startswith("no int8 variant passes every gate: int8: test AUC")
    assert "FAILED: no int8 variant passes every gate" in format_table(report)
    assert compress_verdict(_report([e for e in ENTRIES if e.name != "int8_mixed"], int8=False)).level == "warning"


def test_nothing_the_target_runs_is_a_failure_too():
    entries = [*MEASURED[:3], replace(MEASURED[3], status="failed", delta_auc=-0.5)]
    report = _report(entries, int8=False, device="coral-dev-board", runs=("int8",))
    verdict = compress_verdict(report)
    assert report.recommended is None and verdict.failed
    assert verdict.summary.startswith("no variant that coral-dev-board runs passes every gate: int8: test AUC")


def test_passed_and_not_run():
    assert compress_verdict(_report(MEASURED)).level == "passed"
    assert compress_verdict(_report(MEASURED)).summary == "every variant passes every gate; deploy int8_pqat"
    assert compress_verdict(None).level == "not run"
