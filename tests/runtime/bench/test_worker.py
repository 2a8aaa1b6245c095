"""The bench worker: its stable entry point, its JSON line, and a peak RSS that is its own."""

import json
import math
import subprocess
import sys
from dataclasses import asdict

import pytest

from medtk.errors import MedtkError
from medtk.runtime.bench.protocol import WORKER_MODULE, parse_worker_output, worker_command

# The keys of the worker's JSON line as medtk 0.1.0 printed them: an older medtk on the local side reads
# these from a newer device, and a newer one reads them from an older device.
LINE_KEYS = {
    "model", "size_bytes", "macs", "variant", "backend", "delegate", "delegate_fallback", "threads", "init_ms",
    "first_inference_ms", "warmup_runs", "warmup_mean_ms", "bare", "end_to_end_first_ms", "end_to_end",
    "end_to_end_image", "rss_baseline_mb", "rss_peak_mb", "machine",
}


def test_worker_peak_rss_is_its_own_not_the_parents():
    """ru_maxrss survives fork + exec on Linux; the worker must not report a big parent's peak."""
    parent = (
        "import subprocess, sys; ballast = bytearray(600 * 1024 * 1024); ballast[::4096] = b'x' * len(ballast[::4096]); "
        "print(subprocess.run([sys.executable, '-c', 'from medtk.runtime.bench.worker import _rss_mb; print(_rss_mb())'],"
        " capture_output=True, text=True, check=True).stdout)"
    )
    reported = float(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout)
    assert 5 < reported < 300


@pytest.fixture(scope="module")
def worker_line(models):
    command = worker_command(sys.executable, str(models["int8"]), threads=1, runs=2, warmup=0, delegate="cpu")
    assert command[1:3] == ["-m", "medtk.runtime.bench_worker"] == ["-m", WORKER_MODULE]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_the_stable_entry_point_prints_one_compatible_json_line(worker_line, models):
    data = json.loads(worker_line)
    assert set(data) == LINE_KEYS
    assert set(data["machine"]) >= {"hostname", "detected_profile", "detected_from"}
    bench = parse_worker_output(worker_line, "here")
    assert bench.model == models["int8"].name and bench.variant == "int8" and bench.bare.runs == 2
    assert json.loads(json.dumps(asdict(bench))) == data


def test_an_older_workers_infinite_throughput_reads_as_none(worker_line):
    data = json.loads(worker_line)
    data["bare"]["throughput_per_s"] = math.inf
    bench = parse_worker_output("library noise\n" + json.dumps(data), "device:model")
    assert bench.bare.throughput_per_s is None


def test_worker_errors_are_one_json_line(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    command = worker_command(sys.executable, str(junk), threads=1, runs=2, warmup=0, delegate="cpu")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["type"] == "ModelError"
    with pytest.raises(MedtkError, match=r"junk.tflite: not a (usable )?TFLite model"):
        parse_worker_output(done.stdout, str(junk))
    with pytest.raises(MedtkError, match="device:m: the bench worker printed no result"):
        parse_worker_output("Traceback ...", "device:m")
