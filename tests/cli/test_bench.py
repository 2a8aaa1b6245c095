import json


import pytest
from typer.testing import CliRunner

from medtk.cli import app



@pytest.fixture(scope="module")
def model(bench_models):
    return bench_models["int8"]


def test_bench_prints_a_table_and_writes_json(tmp_path, model):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", str(model), str(model), "--device", "rpi5", "--runs", "3", "--warmup", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "ESTIMATE for raspberry-pi-5" in result.output and "comparison" in result.output
    report = json.loads(out.read_text())
    assert [r["where"]["mode"] for r in report["results"]] == ["host-estimate", "host-estimate"]
    assert len(report["comparison"]) == 2


def test_bench_json_to_stdout(model):
    result = CliRunner().invoke(app, ["bench", str(model), "--runs", "2", "--warmup", "0", "--threads", "1", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["where"]["mode"] == "on-device"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--device", "jetsn"], 2, "unknown device profile 'jetsn'"),
        (["--runs", "1"], 2, "--runs 1"),
        (["--ssh-port", "2222"], 2, "need --host"),
    ],
)
def test_usage_errors_exit_2_with_one_line(model, args, code, message):
    result = CliRunner().invoke(app, ["bench", str(model), *args])
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output


def test_missing_model_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "nope.tflite")])
    assert result.exit_code == 1 and "nope.tflite: no such model file" in result.output
