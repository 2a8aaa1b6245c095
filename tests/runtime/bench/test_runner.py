"""`medtk.runtime.bench.run_bench` on real tiny TFLite models, measured in real worker processes."""

import json
import os
from dataclasses import replace

import pytest

from medtk.errors import ConfigError, MedtkError, ModelError
from medtk.runtime.bench import METHOD, SCHEMA, BenchSettings, run_bench
from medtk.runtime.metadata import embed_metadata, read_metadata
from medtk.runtime.versions import runtime_versions
from tests.runtime.bench.conftest import FAST


def _check_stats(stats):
    assert stats["runs"] == FAST.runs
    assert 0 < stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    assert stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert stats["std_ms"] >= 0 and stats["throughput_per_s"] > 0


def test_report_schema_and_sanity_on_this_host(here_report, models):
    report = here_report.to_json()
    assert report["schema"] == SCHEMA and report["device"] is None
    assert [r["model"] for r in report["results"]] == ["tiny_float32.tflite", "tiny_int8.tflite"]
    for result, variant in zip(report["results"], ("float32", "int8")):
        assert result["where"]["mode"] == "on-device"  # this machine matched its own profile (or none)
        assert result["where"]["detected_from"]
        assert result["variant"] == variant
        assert result["size_bytes"] == models[variant].stat().st_size
        assert result["backend"] == str(runtime_versions())  # LiteRT's version, numpy's, and the CPU architecture
        assert result["delegate"] == "cpu" and result["threads"] == 1
        assert result["init_ms"] > 0 and result["first_inference_ms"] > 0 and result["end_to_end_first_ms"] > 0
        _check_stats(result["bare"])
        _check_stats(result["end_to_end"])
        assert 0 < result["rss_baseline_mb"] <= result["rss_peak_mb"]
        assert result["estimate"] is None
    json.dumps(report)  # serialisable as is


def test_comparison_has_one_row_per_model_relative_to_the_first(here_report):
    report = here_report.to_json()
    rows = report["comparison"]
    assert len(rows) == 2
    assert rows[0]["speedup_vs_first"] == pytest.approx(1.0)
    for row, result in zip(rows, report["results"]):
        assert row["p50_ms"] == result["bare"]["p50_ms"]
        assert row["speedup_vs_first"] == pytest.approx(rows[0]["p50_ms"] / row["p50_ms"])
        assert row["size_mb"] > 0 and row["peak_rss_mb"] > 0


def test_other_device_is_a_labelled_host_estimate(estimate_report):
    report = estimate_report.to_json()
    assert "using profile 'raspberry-pi-4'" in report["notes"][0]
    assert "ESTIMATED" in report["notes"][1]
    result = report["results"][0]
    assert result["where"]["mode"] == "host-estimate" and result["where"]["device"] == "raspberry-pi-4"
    assert result["threads"] == min(4, len(os.sched_getaffinity(0)))
    estimate = result["estimate"]
    assert estimate["method"] == METHOD and "reference.latency_ms" in estimate["method_text"]
    assert estimate["reference_source"].startswith("https://")
    assert estimate["estimated_ms"] == pytest.approx(
        estimate["reference"]["latency_ms"] * result["macs"] / estimate["reference"]["macs"]
    )
    check = result["memory_check"]
    assert check["device"] == "raspberry-pi-4" and check["ok"] and check["device_memory_mb"] == 4096


def test_a_fine_tuned_int8_variant_is_matched_to_the_int8_reference(models, tmp_path):
    """int8_pqat runs int8 arithmetic: its estimate scales the profile's int8 figure, not an approximate one."""
    int8 = models["int8"].read_bytes()
    pqat = tmp_path / "tiny_int8_pqat.tflite"
    pqat.write_bytes(embed_metadata(int8, replace(read_metadata(int8), variant="int8_pqat")))
    report = run_bench([pqat], BenchSettings(runs=2, warmup=0, threads=1), device="raspberry-pi-4")
    (result,) = report.results
    assert result.variant == "int8_pqat"
    assert result.estimate.model_precision == "int8"
    assert result.estimate.reference.precision == "int8"
    assert not result.estimate.approximate  # a published figure of the same precision


def test_bad_inputs_are_one_line_errors(tmp_path, models):
    with pytest.raises(ModelError, match="no such model file"):
        run_bench([tmp_path / "missing.tflite"], FAST)
    with pytest.raises(ConfigError, match="--runs 1"):
        run_bench([models["int8"]], BenchSettings(runs=1))
    with pytest.raises(ConfigError, match="unknown device profile 'jetsonn'"):
        run_bench([models["int8"]], FAST, device="jetsonn")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(MedtkError, match=r"^\S*junk.tflite: not a (usable )?TFLite model"):
        run_bench([junk], FAST)
