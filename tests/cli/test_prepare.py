"""`medtk prepare` through the CLI: a summary line, one-line errors with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medtk.cli import app


def test_prepare_writes_the_dataset_and_a_rerun_reuses_it(tmp_path: Path):
    out = tmp_path / "ds"
    args = ["prepare", "--data", "synthetic:60", "--out", str(out), "--input-size", "32", "--seed", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train 36, val 12, test 12 images at 32 px, 1 channel(s); 3 shards (3 written, 0 reused)" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["layout"]["shuffle_seed"] == 2
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "(0 written, 3 reused)" in again.stdout
    changed = CliRunner().invoke(app, [*args[:-2], "--seed", "5", "--subset", "4"])
    assert changed.exit_code == 1 and "the source changed" in changed.output


def test_bad_options_exit_2_and_create_nothing(tmp_path: Path):
    out = tmp_path / "ds"
    for extra, message in ((["--input-size", "32", "--channels", "4"], "--channels 4 is not 1 or 3"),
                           (["--input-size", "32", "--shard-mb", "0"], "--shard-mb 0 must be at least 1"),
                           (["--input-size", "2000"], "--input-size 2000 is out of range")):
        result = CliRunner().invoke(app, ["prepare", "--data", "synthetic:60", "--out", str(out), *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()
