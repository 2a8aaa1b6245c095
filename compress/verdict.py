"""The one verdict on a compress run, which `medtk compress` (exit code and table), the demo and the
report's headline all show, so they can never disagree.

- "failed": compress did not deliver what was asked: no compressed variant of the requested kind (an
  integer one with --int8) passes every gate, or nothing the target device runs does. Exit 3.
- "warning": some variant failed a gate beside a passing recommended one. The recommended one is what
  to deploy; the failing one is a finding (named, with why), not a failed command.
- "passed": every variant passes every gate.
- "not run": no compress.json yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from medtk.compress.recommend import unmet_request
from medtk.schema import CompressReport

LEVELS = ("passed", "warning", "failed", "not run")


@dataclass(frozen=True)
class Verdict:
    level: str  # one of LEVELS
    summary: str  # one sentence: why this level, and what to deploy
    recommended: str | None = None

    @property
    def failed(self) -> bool:
        return self.level == "failed"


def compress_verdict(report: CompressReport | None) -> Verdict:
    """The verdict on `report` (RUN/compress.json), decided from the file alone."""
    if report is None:
        return Verdict("not run", "no compression results yet (medtk compress RUN --int8)")
    failures = "; ".join(report.gate.failures)
    unmet = unmet_request(report.variants, int8=bool(report.options.get("int8")))
    if unmet is None and report.recommended is None:
        unmet = f"no variant that {report.options.get('device') or 'the target'} runs passes every gate"
    if unmet is not None:
        why = failures or "; ".join(f"{name}: {reason}" for name, reason in report.not_recommended.items())
        return Verdict("failed", f"{unmet}: {why}" if why else unmet, report.recommended)
    if failures:
        return Verdict("warning", f"deploy {report.recommended}, which passes every gate; not deployable: {failures}",
                       report.recommended)
    return Verdict("passed", f"every variant passes every gate; deploy {report.recommended}", report.recommended)
