"""`medtk serve` as a command: help, and one-line errors with the documented exit codes."""

from __future__ import annotations

from typer.testing import CliRunner

from medtk.cli.app import app

runner = CliRunner()


def test_help_lists_the_contract_options():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--http-port", "--dicom-port", "--ae-title", "--forward", "--spool", "--token-file",
                   "--rules", "--allow-ae", "--queue-size", "--max-body-bytes", "--tls-cert"):
        assert option in result.output


def test_bad_forward_is_a_usage_error(serve_models, tmp_path):
    result = runner.invoke(app, ["serve", str(serve_models["op"]), "--forward", "PACS", "--spool", str(tmp_path)])
    assert result.exit_code == 2
    assert "--forward 'PACS': expected AET@HOST:PORT" in result.output
    assert "Traceback" not in result.output


def test_missing_model(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path / "none.tflite"), "--spool", str(tmp_path / "s")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_a_failed_variant_is_refused_in_one_line_unless_allowed(failed_variant, tmp_path):
    result = runner.invoke(app, ["serve", str(failed_variant), "--spool", str(tmp_path / "s"), "--http-port", "0",
                                 "--dicom-port", "0"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "quality gate" in line]
    assert lines == [f"medtk: error: {failed_variant}: variant float32 failed compress's quality gate (max_auc_drop "
                     "0.07 > 0.01); refusing to serve it: deploy the variant compress recommends, or pass "
                     "--allow-failed-variant to serve this one anyway"]
    assert "Traceback" not in result.output and not (tmp_path / "s").exists()
    assert "--allow-failed-variant" in runner.invoke(app, ["serve", "--help"]).output
