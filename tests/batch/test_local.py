"""`run_batch` on the local pool: one row per image, a corrupt file is a row with its error, the rows are
what `Classifier.predict` gives, and the results folder is what `_job.json` says."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.batch.store import part_files, read_job
from medtk.runtime import Classifier
from tests.batch.conftest import CORRUPT, THRESHOLD, read_rows
from tests.runtime.dicom_builders import NAME_LIKE


def test_every_image_is_one_row_and_the_corrupt_one_names_its_problem(local_results, image_folder):
    rows = read_rows(local_results)
    files = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*") if p.is_file())
    assert [row["source_id"] for row in rows] == files and len(files) == 21
    (bad,) = [row for row in rows if row["error"] is not None]
    assert bad["source_id"] == CORRUPT and str(image_folder / CORRUPT) in bad["error"] and "\n" not in bad["error"]
    assert bad["label"] is None and bad["prob_pneumonia"] is None and bad["truth"] == "normal"
    assert len(part_files(local_results)) == 6  # 21 rows in parts of 4


def test_rows_are_the_classifiers_own_predictions(local_results, image_folder, batch_model):
    classifier = Classifier(batch_model, num_threads=1)
    for row in read_rows(local_results):
        if row["error"] is not None:
            continue
        prediction = classifier.predict(image_folder / row["source_id"])
        assert row["label"] == prediction.label and row["positive"] == prediction.positive
        assert row["prob_normal"] == prediction.probabilities["normal"]
        assert row["prob_pneumonia"] == prediction.probabilities["pneumonia"]
        assert row["threshold"] == pytest.approx(THRESHOLD) and row["warnings"] == list(prediction.warnings)
        assert row["truth"] == row["source_id"].split("/")[0]
        assert row["model_sha256"] == classifier.file_sha256 and row["variant"] == "int8"


def test_positive_means_at_or_above_the_models_threshold(local_results):
    rows = [row for row in read_rows(local_results) if row["error"] is None]
    assert {row["positive"] for row in rows} == {True, False}  # the toy data has both
    assert all(row["positive"] == (row["prob_pneumonia"] >= THRESHOLD) for row in rows)


def test_job_file_says_complete_and_counts(local_results, batch_model, image_folder):
    job = read_job(local_results)
    assert job.complete and job.rows == 21 and job.errors == 1 and job.expected == 21 and job.labelled
    assert job.model.threshold == pytest.approx(THRESHOLD) and job.model.positive_class == "pneumonia"
    assert job.source == str(image_folder)


def test_no_dicom_header_value_reaches_the_results(local_results):
    for path in [*part_files(local_results), local_results / "_job.json"]:
        assert NAME_LIKE.encode() not in path.read_bytes()


def test_npz_source_rows_carry_its_labels_and_the_callers_blas_threads_are_restored(batch_model, tmp_path):
    from threadpoolctl import threadpool_info

    from medtk.batch.job import BatchOptions, run_batch
    from tests.runtime.runtime_models import synthetic_images, toy_labels

    images = synthetic_images(np.random.default_rng(5), 9)[..., 0]
    labels = toy_labels(images[..., None])
    arrays = {f"{split}_{kind}": (images[i::3] if kind == "images" else labels[i::3, None])
              for i, split in enumerate(("train", "val", "test")) for kind in ("images", "labels")}
    np.savez(tmp_path / "toy.npz", **arrays)
    blas_threads = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    summary = run_batch(batch_model, str(tmp_path / "toy.npz"), tmp_path / "out", BatchOptions(workers=1))
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == blas_threads
    rows = read_rows(tmp_path / "out")
    assert summary.rows == 9 and [r["source_id"] for r in rows][:3] == ["test[0]", "test[1]", "test[2]"]
    assert all(r["error"] is None and r["truth"] in ("0", "1") for r in rows)  # no catalogue: labels are numbers
    classifier = Classifier(batch_model, num_threads=1)
    assert rows[0]["prob_pneumonia"] == classifier.predict(images[2]).probabilities["pneumonia"]  # test[0] = index 2


def test_a_prepared_dataset_is_predicted_from_its_records_without_decoding_again(batch_model, image_folder, tmp_path):
    """Every split of a `medtk prepare` dataset, one row per record, equal to predicting the record's pixels."""
    from medtk.batch.job import BatchOptions, run_batch
    from medtk.data import load_dataset
    from medtk.data.prepared import open_prepared, prepare_dataset
    from medtk.errors import DataError

    classifier = Classifier(batch_model, num_threads=1)
    dataset = tmp_path / "prepared"
    prepare_dataset(load_dataset(str(image_folder)), dataset, classifier.input_size, classifier.channels)
    prepared = open_prepared(dataset)
    records = {item.source_id: item for split in prepared.splits for item in prepared.items(split)}
    out = tmp_path / "results.parquet"
    run_batch(batch_model, str(dataset), out, BatchOptions(workers=2, rows_per_part=4))
    rows = read_rows(out)
    assert sorted(row["source_id"] for row in rows) == sorted(records) and len(rows) == 20  # the corrupt one was skipped
    for row in rows:
        record = records[row["source_id"]]
        prediction = classifier.predict(record.image)
        assert row["error"] is None and row["prob_pneumonia"] == prediction.probabilities["pneumonia"]
        assert row["truth"] == row["source_id"].split("/")[0]

    with pytest.raises(DataError, match=r"prepared at 32 px x 1 channel\(s\) resized by 'area-down/linear-exact-up', "
                                         r"but the model takes 64 px x 1"):
        other = tmp_path / "small"
        prepare_dataset(load_dataset(str(image_folder)), other, 32, 1)
        run_batch(batch_model, str(other), tmp_path / "other.parquet", BatchOptions(workers=1))
    assert not (tmp_path / "other.parquet").exists()
