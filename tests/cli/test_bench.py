import json
from pathlib import Path


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


def _compressed_run(folder, bench_models, recommended="int8"):
    """A run folder as compress leaves it: compress.json naming the recommended variant, real exports."""
    from medtk.run import Run
    from medtk.schema import CompressReport, Gate, Headline, Reference, VariantResult

    run = Run(folder)
    run.export.mkdir(parents=True)
    headline = Headline(auc=0.9, accuracy=0.8, sensitivity=0.8, specificity=0.8)
    entries = []
    for name in ("float32", "int8"):
        run.export_path(name).write_bytes(bench_models[name].read_bytes())
        entries.append(VariantResult(name=name, path=f"export/{name}.tflite", status="passed", input_dtype="float32",
                                     size_bytes=1, gzip_bytes=1, sparsity=0.0, test=headline))
    run.write(run.compress_file, CompressReport(
        reference=Reference(variant="float32", measured="m", test=headline, test_images=10),
        variants=tuple(entries), gate=Gate(max_auc_drop=0.01, passed=True), options={}, recommended=recommended,
    ))
    return run


@pytest.mark.parametrize("device, written", [(None, "bench.json"), ("rpi5", "bench-raspberry-pi-5.json")])
def test_a_run_folder_benches_float32_and_the_recommended_variant_into_the_run(tmp_path, bench_models, device, written):
    run = _compressed_run(tmp_path / "run", bench_models)
    extra = ["--device", device] if device else ["--threads", "1"]
    result = CliRunner().invoke(app, ["bench", str(run.root), "--runs", "2", "--warmup", "0", *extra])
    assert result.exit_code == 0, result.output
    assert [name for name, _ in run.benchmarks()] == [written]
    (_, report), = run.benchmarks()
    assert [Path(r.model).name for r in report.results] == ["float32.tflite", "int8.tflite"]


def test_a_run_folder_without_exports_is_a_one_line_error(tmp_path):
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "no exported model in this run folder (run `medtk compress" in result.output
    assert "Traceback" not in result.output
