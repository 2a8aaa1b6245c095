"""`medtk.runtime.bench` on real tiny TFLite models, measured in real worker processes."""

import json

import numpy as np
import pytest

from medtk.devices import load_profile
from medtk.errors import ConfigError, MedtkError, ModelError
from medtk.runtime.bench import SCHEMA, BenchSettings, run_bench, write_report
from medtk.runtime.bench_cost import count_macs
from medtk.runtime.bench_estimate import METHOD, estimate_latency, pick_reference
from medtk.runtime.bench_stats import summarize

FAST = BenchSettings(runs=5, warmup=1, threads=1)


@pytest.fixture(scope="module")
def models(bench_models):
    return bench_models


@pytest.fixture(scope="module")
def here_report(models):
    return run_bench([models["float32"], models["int8"]], FAST)


def _check_stats(stats):
    assert stats["runs"] == FAST.runs
    assert 0 < stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert stats["std_ms"] >= 0 and stats["throughput_per_s"] > 0


def test_summarize_orders_percentiles():
    stats = summarize([5.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.min_ms == 1.0 and stats.max_ms == 100.0
    assert stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.throughput_per_s == pytest.approx(1000 / np.mean([5, 1, 2, 3, 4, 100]))


def test_macs_are_counted_from_the_graph_and_do_not_depend_on_precision(models):
    # MobileNetV2 is ~300 M MACs at 224x224; at 32x32 the convolutions scale with the pixel count.
    macs = count_macs(models["float32"])
    assert macs == count_macs(models["int8"])
    assert 300e6 * (32 / 224) ** 2 * 0.7 < macs < 300e6 * (32 / 224) ** 2 * 1.5


def test_report_schema_and_sanity_on_this_host(here_report, models):
    report = here_report
    assert report["schema"] == SCHEMA and report["device"] is None
    assert [r["model"] for r in report["results"]] == ["tiny_float32.tflite", "tiny_int8.tflite"]
    for result, variant in zip(report["results"], ("float32", "int8")):
        assert result["where"]["mode"] == "on-device"  # this machine matched its own profile (or none)
        assert result["where"]["detected_from"]
        assert result["variant"] == variant
        assert result["size_bytes"] == models[variant].stat().st_size
        assert result["backend"].startswith(("ai-edge-litert", "tflite-runtime"))
        assert result["delegate"] == "cpu" and result["threads"] == 1
        assert result["init_ms"] > 0 and result["first_inference_ms"] > 0 and result["end_to_end_first_ms"] > 0
        _check_stats(result["bare"])
        _check_stats(result["end_to_end"])
        assert 0 < result["rss_baseline_mb"] <= result["rss_peak_mb"]
        assert result["estimate"] is None
    json.dumps(report)  # serialisable as is


def test_comparison_has_one_row_per_model_relative_to_the_first(here_report):
    rows = here_report["comparison"]
    assert len(rows) == 2
    assert rows[0]["speedup_vs_first"] == pytest.approx(1.0)
    for row, result in zip(rows, here_report["results"]):
        assert row["p50_ms"] == result["bare"]["p50_ms"]
        assert row["speedup_vs_first"] == pytest.approx(rows[0]["p50_ms"] / row["p50_ms"])
        assert row["size_mb"] > 0 and row["peak_rss_mb"] > 0


def test_other_device_is_a_labelled_host_estimate(models):
    report = run_bench([models["int8"]], BenchSettings(runs=3, warmup=0), device="pi4")
    assert "using profile 'raspberry-pi-4'" in report["notes"][0]
    assert "ESTIMATED" in report["notes"][1]
    result = report["results"][0]
    assert result["where"]["mode"] == "host-estimate" and result["where"]["device"] == "raspberry-pi-4"
    assert result["threads"] == min(4, len(__import__("os").sched_getaffinity(0)))
    estimate = result["estimate"]
    assert estimate["method"] == METHOD and "reference.latency_ms" in estimate["method_text"]
    assert estimate["reference_source"].startswith("https://")
    assert estimate["estimated_ms"] == pytest.approx(
        estimate["reference"]["latency_ms"] * result["macs"] / estimate["reference"]["macs"]
    )
    check = result["memory_check"]
    assert check["device"] == "raspberry-pi-4" and check["ok"] and check["device_memory_mb"] == 4096


def test_estimate_prefers_same_precision_and_closest_work():
    coral = load_profile("coral-dev-board")
    assert pick_reference(coral, 4_000_000_000, "int8").model == "resnet50"
    assert pick_reference(coral, 300_000_000, "int8").model == "mobilenet_v2"
    estimate = estimate_latency(coral, 3_650_000_000, "int8", host_measured_ms=2.0)  # half of ResNet-50 at 299
    assert estimate.estimated_ms == pytest.approx(1763.0 / 2)
    assert estimate.implied_slowdown_vs_host == pytest.approx(estimate.estimated_ms / 2.0)
    assert not estimate.approximate
    assert estimate_latency(load_profile("jetson"), 730_000_000, "int8", 2.0).approximate  # derived figure


def test_write_report_is_atomic_and_valid_json(tmp_path, here_report):
    target = tmp_path / "out" / "bench.json"
    write_report(here_report, target)
    assert json.loads(target.read_text())["schema"] == SCHEMA
    assert [p.name for p in target.parent.iterdir()] == ["bench.json"]


def test_bad_inputs_are_one_line_errors(tmp_path, models):
    with pytest.raises(ModelError, match="no such model file"):
        run_bench([tmp_path / "missing.tflite"], FAST)
    with pytest.raises(ConfigError, match="--runs 1"):
        run_bench([models["int8"]], BenchSettings(runs=1))
    with pytest.raises(ConfigError, match="unknown device profile 'jetsonn'"):
        run_bench([models["int8"]], FAST, device="jetsonn")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(MedtkError, match=r"^\S*junk.tflite: not a usable TFLite model"):
        run_bench([junk], FAST)
