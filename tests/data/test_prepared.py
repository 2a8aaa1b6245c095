"""Prepared datasets (medtk.data.prepared): round trip, resume after kill -9, bad images, changed sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medtk.data import load_dataset
from medtk.data.prepared import MANIFEST, open_prepared, prepare_dataset
from medtk.data.prepared.source import prepare_source
from medtk.errors import ConfigError, DataError
from medtk.runtime.imaging import decode_image, prepare_input
from tests.data.datafiles import make_class_folder

SIZE = 32
SMALL_SHARDS = SIZE * SIZE * 5  # five images a shard: several shards per split


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic:60")


@pytest.fixture(scope="module")
def prepared(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "ds"
    prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    return open_prepared(out)


def _all_ids(dataset) -> list[str]:
    return [item.source_id for split in dataset.splits for item in dataset.items(split)]


def test_round_trip_gives_the_devices_pixels_labels_and_groups(synthetic, prepared):
    for name, split in synthetic.splits.items():
        items = {item.source_id: item for item in prepared.items(name)}
        assert len(items) == len(split) == prepared.count(name)
        for i, item_id in enumerate(split.ids):
            item = items[item_id]
            assert item.image.dtype == np.uint8 and item.image.shape == (SIZE, SIZE, 1)
            assert np.array_equal(item.image, prepare_input(split.load(i), SIZE, 1))
            assert item.label == int(split.labels[i])
            assert item.group == (split.patient_ids[i] if split.patient_ids else "")
    manifest = prepared.manifest
    assert manifest.complete and manifest.counts == {
        name: dict(zip(synthetic.class_names, map(int, np.bincount(split.labels, minlength=2))))
        for name, split in synthetic.splits.items()}
    assert len(prepared.shards("train")) == -(-len(synthetic.splits["train"]) // 5)
    assert 0 < manifest.pixels["train"].mean < 255 and manifest.pixels["train"].std > 0
    assert manifest.preprocessing.input_size == SIZE and manifest.preprocessing.channels == 1
    prepared.verify()


def test_training_shards_hold_a_seeded_shuffle_and_the_manifest_is_plain_json(synthetic, prepared):
    train_ids = [item.source_id for item in prepared.items("train")]
    assert sorted(train_ids) == sorted(synthetic.splits["train"].ids)
    assert train_ids != synthetic.splits["train"].ids  # interleaving a few shards must mix the classes
    raw = json.loads((prepared.root / MANIFEST).read_text())
    assert raw["schema"] == "medtk-prepared/1"
    assert {shard["file"] for shard in raw["shards"]} == {p.name for p in prepared.root.glob("*.tfrecord")}


def test_a_flipped_byte_in_a_shard_is_an_error_naming_the_shard(prepared, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(prepared.root, copy)
    shard = copy / prepared.shards("val")[0].file
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{shard.name}: record \d: data checksum mismatch"):
        list(open_prepared(copy).items("val"))
    with pytest.raises(DataError, match=f"{shard.name}: missing or altered"):
        open_prepared(copy).verify()


def test_a_changed_source_or_preprocessing_is_named_and_overwrite_replaces(synthetic, tmp_path):
    out = tmp_path / "ds"
    prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    other_split = load_dataset("synthetic:60", subset=5)  # fewer items, same names
    with pytest.raises(DataError, match=r"ds: the source changed \(its items, labels or split differ"):
        prepare_dataset(other_split, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    with pytest.raises(DataError, match=r"the preprocessing changed \(channels 1 -> 3\)"):
        prepare_dataset(synthetic, out, SIZE, 3, shard_bytes=SMALL_SHARDS)
    result = prepare_dataset(other_split, out, SIZE, 1, shard_bytes=SMALL_SHARDS, overwrite=True)
    assert result.shards_reused == 0
    assert sorted(_all_ids(open_prepared(out))) == sorted(i for s in other_split.splits.values() for i in s.ids)


def test_bad_options_and_foreign_folders_are_refused_before_anything_is_created(tmp_path):
    with pytest.raises(ConfigError, match="--input-size 8 is out of range"):
        prepare_source("synthetic:60", tmp_path / "new", 8, 1)
    with pytest.raises(ConfigError, match="--channels 2 is not 1 or 3"):
        prepare_source("synthetic:60", tmp_path / "new", SIZE, 2)
    assert not (tmp_path / "new").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no prepared dataset"):
        prepare_source("synthetic:60", tmp_path / "busy", SIZE, 1)


def test_corrupt_images_are_recorded_with_their_reason_never_a_crash(tmp_path):
    root = make_class_folder(tmp_path / "src", {"normal": 12, "lesion": 12})
    (root / "normal" / "normal_000.png").write_bytes(b"not a png at all")  # found by the source check
    dataset = load_dataset(str(root), max_bad_fraction=0.2)
    late = dataset.splits["train"].ids[0]
    (root / late).write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable by the time it is prepared
    result = prepare_dataset(dataset, tmp_path / "ds", SIZE, 1, shard_bytes=SMALL_SHARDS)
    skipped = {item.item: item for item in result.manifest.skipped}
    assert set(skipped) == {"normal/normal_000.png", late}
    assert skipped[late].split == "train" and skipped[late].reason and "\n" not in skipped[late].reason
    ids = _all_ids(open_prepared(tmp_path / "ds"))
    assert len(ids) == 22 and late not in ids and "normal/normal_000.png" not in ids


def test_a_rerun_after_an_interrupted_shard_writes_only_the_missing_ones(synthetic, tmp_path):
    out = tmp_path / "ds"
    prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    manifest = json.loads((out / MANIFEST).read_text())
    kept, lost = manifest["shards"][:4], manifest["shards"][4:]
    for shard in lost:
        (out / shard["file"]).unlink()
    (out / f".{lost[0]['file']}.tmp").write_bytes(b"half a shard")  # the kill came mid-write
    (out / MANIFEST).write_text(json.dumps({**manifest, "complete": False, "shards": kept}))
    with pytest.raises(DataError, match=rf"preparation not finished \(4 of {len(manifest['shards'])} shards\)"):
        open_prepared(out)
    result = prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    assert (result.shards_reused, result.shards_written) == (4, len(lost))
    assert not list(out.glob(".*.tmp"))
    ids = _all_ids(open_prepared(out))
    assert sorted(ids) == sorted(i for s in synthetic.splits.values() for i in s.ids)  # each exactly once


_KILLABLE = """
import sys
from pathlib import Path
from medtk.data.prepared.source import prepare_source
prepare_source("synthetic:100", Path(sys.argv[1]), 32, 1, shard_bytes=32 * 32, threads=1)
"""


def test_kill_9_mid_run_then_rerun_gives_every_item_exactly_once(tmp_path):
    out = tmp_path / "ds"
    process = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and process.poll() is None:
        try:
            done = len(json.loads((out / MANIFEST).read_text())["shards"])
        except (OSError, ValueError):
            done = 0
        if done >= 10:
            break
        time.sleep(0.02)
    assert process.poll() is None, "prepare finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not json.loads((out / MANIFEST).read_text())["complete"]
    result = prepare_source("synthetic:100", out, 32, 1, shard_bytes=32 * 32, threads=1)
    assert result.shards_reused >= 10 and result.shards_written > 0
    ids = _all_ids(open_prepared(out))
    assert len(ids) == len(set(ids)) == 100


def test_a_source_file_changed_under_its_name_gets_its_shard_written_again(tmp_path, caplog):
    import logging

    from tests.data.datafiles import random_image, write_image

    root = make_class_folder(tmp_path / "src", {"normal": 12, "lesion": 12})
    out = tmp_path / "ds"
    first = prepare_source(str(root), out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    changed = first.manifest.shards[2]
    refs = [ref for ref in open_prepared(out).index(changed.split) if ref.shard.name == changed.file]
    item = refs[0].source_id
    before = refs[0].read().image
    write_image(root / item, random_image(np.random.default_rng(7)))  # new pixels, same name
    os.utime(root / item, ns=(time.time_ns(), time.time_ns() + 10**9))
    with caplog.at_level(logging.WARNING, logger="medtk.data.prepared.writer"):
        again = prepare_source(str(root), out, SIZE, 1, shard_bytes=SMALL_SHARDS)
    assert (again.shards_written, again.shards_reused) == (1, len(first.manifest.shards) - 1)
    assert f"{changed.file}: a source file of its images changed" in caplog.text
    now = {ref.source_id: ref for ref in open_prepared(out).index(changed.split)}[item].read().image
    assert not np.array_equal(now, before) and np.array_equal(now, prepare_input(decode_image(root / item), SIZE, 1))


def test_a_second_writer_of_the_same_folder_is_refused_while_the_first_works(synthetic, tmp_path):
    import fcntl

    out = tmp_path / "ds"
    out.mkdir()
    with open(out / ".lock", "a+b") as held:  # what a running prepare holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DataError, match="another process is preparing this dataset now"):
            prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)
        assert [p.name for p in out.iterdir()] == [".lock"]  # nothing written
    result = prepare_dataset(synthetic, out, SIZE, 1, shard_bytes=SMALL_SHARDS)  # released: it goes ahead
    assert result.manifest.complete


def test_a_prepared_dataset_is_a_source_with_its_own_split_and_no_decoding(synthetic, prepared):
    again = load_dataset(str(prepared.root))
    assert again.split_origin == "given" and again.class_names == synthetic.class_names
    assert again.intensity == synthetic.intensity  # the source's kinds of image, from the manifest
    for name, split in synthetic.splits.items():
        other = again.splits[name]
        where = {item: k for k, item in enumerate(other.ids)}
        assert sorted(where) == sorted(split.ids)
        for i, item in enumerate(split.ids):
            pixels = other.load(where[item])
            assert pixels.shape == (SIZE, SIZE)  # one channel reads as a grayscale image
            assert np.array_equal(prepare_input(pixels, SIZE, 1), prepare_input(split.load(i), SIZE, 1))
            assert other.labels[where[item]] == split.labels[i]


_TF_FREE = """
import sys
from medtk.data.prepared import open_prepared
dataset = open_prepared(sys.argv[1])
count = sum(1 for split in dataset.splits for _ in dataset.items(split))
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "medtk"))
print(count, [name for name in heavy if not name.startswith("medtk")] or "none")
"""


def test_reading_needs_no_tensorflow(prepared):
    result = subprocess.run([sys.executable, "-c", _TF_FREE, str(prepared.root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["60", "none"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_disk_is_one_line_naming_the_shard_and_a_rerun_continues(tmp_path):
    from tests.disk_faults import small_disk

    root = make_class_folder(tmp_path / "src", {"normal": 30, "lesion": 30})
    command = [sys.executable, "-m", "medtk", "prepare", "--data", str(root), "--input-size", "224", "--shard-mb", "1"]
    with small_disk(tmp_path / "disk", "1500k") as disk:  # room for one 1 MiB shard of the five
        out = disk / "ds"
        full = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
        errors = [line for line in full.stderr.splitlines() if line.startswith("medtk: error")]
        assert full.returncode == 1 and "Traceback" not in full.stderr and len(errors) == 1, full.stderr[-2000:]
        assert f"{out}/" in errors[0] and "No space left on device" in errors[0] and "rerun" in errors[0]
        assert not list(out.glob(".*.tmp"))  # the partial shard was freed
        kept = len(json.loads((out / MANIFEST).read_text())["shards"])
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        again = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-2000:]
        total = len(json.loads((out / MANIFEST).read_text())["shards"])
        assert f"({total - kept} written, {kept} reused)" in again.stdout and 1 <= kept < total
        assert len(_all_ids(open_prepared(out))) == 60
