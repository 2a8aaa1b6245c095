"""`--ray local`: the same job on a real local Ray cluster (2 CPUs, no dashboard) gives the local pool's rows,
and `run_batch` shuts the cluster it started down again (no Ray left in the test process)."""

from __future__ import annotations

import pytest

from medtk.batch.job import BatchOptions, run_batch
from tests.batch.conftest import read_rows


@pytest.mark.slow
def test_ray_rows_are_the_local_pools(batch_model, image_folder, local_results, tmp_path):
    import ray

    out = tmp_path / "ray.parquet"
    summary = run_batch(batch_model, str(image_folder), out, BatchOptions(workers=2, ray="local", rows_per_part=4))
    assert summary.executor == "ray (local)" and summary.rows == 21 and summary.duplicates == 0
    assert read_rows(out) == read_rows(local_results)
    assert not ray.is_initialized()
