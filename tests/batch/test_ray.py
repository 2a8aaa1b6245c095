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


@pytest.mark.slow
def test_a_prepared_dataset_on_ray_sends_each_record_s_place_not_its_pixels(batch_model, image_folder, tmp_path):
    """The actors read the shards themselves: the driver lists records from the index files, so its memory
    does not grow with the archive; the rows are the local pool's."""
    from medtk.batch.items import open_items
    from medtk.batch.on_ray import _record
    from medtk.data import load_dataset
    from medtk.data.prepared import prepare_dataset
    from medtk.runtime import Classifier

    classifier = Classifier(batch_model, num_threads=1)
    prepared = tmp_path / "prepared"
    prepare_dataset(load_dataset(str(image_folder)), prepared, classifier.input_size, classifier.channels)
    records = [_record(item) for item in open_items(str(prepared), tuple(classifier.labels))]
    assert records and all(set(record) == {"source_id", "shard", "offset", "truth"} for record in records)
    local = run_batch(batch_model, str(prepared), tmp_path / "local.parquet", BatchOptions(workers=2, rows_per_part=4))
    on_ray = run_batch(batch_model, str(prepared), tmp_path / "ray.parquet",
                       BatchOptions(workers=2, ray="local", rows_per_part=4))
    assert on_ray.rows == local.rows == len(records)
    assert read_rows(tmp_path / "ray.parquet") == read_rows(tmp_path / "local.parquet")
