"""A job killed with SIGKILL mid-way and run again: every item is in the results exactly once, with the
values an uninterrupted run gives (a real `medtk predict --data` process, a real kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from medtk.batch.job import BatchOptions, run_batch
from medtk.batch.store import part_files, read_job
from tests.batch.conftest import read_rows
from tests.runtime.runtime_models import synthetic_images, toy_labels

COUNT = 600  # a few seconds of work on one worker: the kill lands after the first part, long before the end


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory):
    images = synthetic_images(np.random.default_rng(11), COUNT)[..., 0]
    labels = toy_labels(images[..., None])[:, None]
    path = tmp_path_factory.mktemp("resume") / "toy.npz"
    thirds = np.array_split(np.arange(COUNT), 3)
    np.savez(path, **{f"{split}_{kind}": (images if kind == "images" else labels)[part]
                      for split, part in zip(("train", "val", "test"), thirds) for kind in ("images", "labels")})
    return path


def _start(model, data, out):
    command = [sys.executable, "-m", "medtk", "-q", "predict", str(model), "--data", str(data), "--out", str(out),
               "--workers", "1", "--rows-per-part", "10"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_killed_job_resumes_with_every_row_exactly_once(batch_model, toy_npz, tmp_path):
    out = tmp_path / "results.parquet"
    process = _start(batch_model, toy_npz, out)
    deadline = time.monotonic() + 120
    while not part_files(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    killed_at = len({row["source_id"] for row in read_rows(out)})
    assert 0 < killed_at < COUNT and not read_job(out).complete  # really mid-job

    summary = run_batch(batch_model, str(toy_npz), out, BatchOptions(workers=2, rows_per_part=50))
    assert summary.already_done == killed_at and summary.written == COUNT - killed_at and summary.duplicates == 0
    rows = read_rows(out)
    ids = [row["source_id"] for row in rows]
    assert len(ids) == len(set(ids)) == COUNT and read_job(out).complete

    fresh = tmp_path / "uninterrupted.parquet"
    run_batch(batch_model, str(toy_npz), fresh, BatchOptions(workers=1, rows_per_part=1000))
    assert rows == read_rows(fresh)
