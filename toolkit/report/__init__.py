"""medtk.report: one self-contained HTML page per run (data, training, metrics, compression, latency, CAMs)."""

from medtk.report.build import ReportResult, write_report

__all__ = ["ReportResult", "write_report"]
