"""`medtk demo --quick`: the whole pipeline end to end through the CLI, ending in a report."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medtk.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_quick_demo_writes_the_report_and_says_where(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--quick", "--out", str(out), "--max-auc-drop", "1"])
    assert result.exit_code == 0, result.output
    report = out / "report.html"
    assert report.is_file()
    assert f"report: {report.resolve()}" in result.stdout
    for step in ("[1/6] train", "[2/6] eval", "[3/6] compress", "[4/6] bench", "[5/6] explain", "[6/6] report"):
        assert step in result.stdout
    for artifact in ("model.keras", "metrics.json", "compress.json", "bench.json", "localization.json",
                     "export/float32.tflite", "export/int8_pqat.tflite"):
        assert (out / artifact).is_file(), artifact
    assert "pointing game on" in result.stdout and "cam " in result.stdout
    html = report.read_text(encoding="utf-8")
    from medtk.compress.verdict import compress_verdict
    from medtk.run import Run

    verdict = compress_verdict(Run(out).compression())  # one verdict: the demo's lines, its exit and the report
    assert verdict.level in ("passed", "warning") and "int8_pqat" in html
    assert f"quality gate {verdict.level}: {verdict.summary}" in result.stdout
    assert f"quality gate {verdict.level}" in result.stdout.split("[6/6] report", 1)[1]
    assert f'<span class="badge">{verdict.level.upper()}</span>' in html
    assert (verdict.level == "warning") == ("medtk: warning:" in result.output)
    assert "Explanations" in html and "pointing game" in html.lower()
    assert "epoch 1/1 took" in result.stdout and "left (0 epochs, then compress" in result.stdout


def test_an_existing_folder_is_never_overwritten_silently(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 2 and "folder exists and is not empty" in result.stderr
    result = runner.invoke(app, ["demo", "--quick", "--out", str(out), "--force"])
    assert result.exit_code == 2 and "replaces only a medtk run folder" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_the_remaining_time_is_the_epochs_left_plus_the_steps_after_training():
    """The first epoch's time, then the median of the later ones (the first also traces the graphs)."""
    from medtk.pipeline import AFTER_TRAINING_EPOCHS, DEMO, _RemainingTime
    from medtk.schema.timings import EpochTimings, Seconds

    said = []
    remaining = _RemainingTime(said.append, DEMO)
    after = DEMO.prune_epochs + DEMO.qat_epochs + AFTER_TRAINING_EPOCHS
    for epoch, seconds in enumerate([80.0, 60.0, 62.0, 58.0]):
        remaining(EpochTimings(epoch, "scratch", 720, Seconds(seconds - 10, 1), Seconds(4, 1), Seconds(4, 1),
                               Seconds(2, 1)), 20)
    assert said[0] == f"      epoch 1/20 took 80.0 s: about {(19 + after) * 80 / 60:.1f} min left (19 epochs, then compress, bench, explain and report)"
    assert said[3].startswith("      epoch 4/20 took 58.0 s:") and f"about {(16 + after) * 60 / 60:.1f} min left" in said[3]
    remaining(EpochTimings(18, "scratch", 720, Seconds(50, 1), Seconds(4, 1), Seconds(4, 1), Seconds(2, 1)), 20)
    assert "left (1 epoch, then compress" in said[4]


def test_the_demo_quantizes_after_training_and_the_quick_demo_still_prunes_and_trains_aware():
    """The demo's model keeps its AUC and CAM as plain int8; pruning + QAT cost minutes and moved its CAM
    (benchmarks/RESULTS.md, "The demo in minutes"). The quick demo keeps both paths exercised end to end."""
    from medtk.pipeline import DEMO, QUICK, compress_options

    demo = compress_options(DEMO)
    assert demo.int8 and not demo.prune and not demo.qat and demo.compressed_variant() is None
    quick = compress_options(QUICK, max_auc_drop=1.0)
    assert (quick.prune, quick.prune_epochs, quick.qat, quick.qat_epochs) == (True, 1, True, 1)
    assert quick.compressed_variant() == "int8_pqat" and quick.max_auc_drop == 1.0
