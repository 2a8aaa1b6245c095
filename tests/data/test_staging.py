"""The source check's pixels kept at model size (medtk.data.staging): each raw file is decoded once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

import medtk.data.files
import medtk.data.validate
from medtk.data import load_dataset
from medtk.data.prepared import open_prepared, prepare_dataset
from medtk.data.prepared.source import prepare_source
from medtk.data.staging import DecodedStage
from medtk.runtime.imaging import decode_image, prepare_input
from tests.data.datafiles import make_class_folder, random_image, write_image
from tests.disk_faults import fill_disk, small_disk

SIZE = 16


def test_a_kept_image_is_exactly_what_prepare_input_makes_of_the_decoded_file(tmp_path):
    rng = np.random.default_rng(0)
    grey, colour = random_image(rng, (40, 30), np.uint16), random_image(rng, (20, 50, 3))
    with DecodedStage(tmp_path, SIZE) as stage:
        stage.keep("grey", grey)
        stage.keep("colour", colour)
        for channels in (1, 3):
            assert np.array_equal(stage.pixels("grey", SIZE, channels), prepare_input(grey, SIZE, channels))
        assert np.array_equal(stage.pixels("colour", SIZE, 3), prepare_input(colour, SIZE, 3))
        assert stage.pixels("colour", SIZE, 1) is None  # grey before resizing is other pixels: decoded again
        assert stage.pixels("grey", SIZE * 2, 1) is None and stage.pixels("unknown", SIZE, 1) is None
    assert not list(tmp_path.iterdir())  # the stage has no name on disk


def _count_decodes(monkeypatch) -> dict[str, int]:
    """Every decode of a source file, by the check and by the split's loader."""
    counts: dict[str, int] = {}

    def counting(source):
        counts[Path(source).name] = counts.get(Path(source).name, 0) + 1
        return decode_image(source)

    monkeypatch.setattr(medtk.data.validate, "decode_image", counting)
    monkeypatch.setattr(medtk.data.files, "decode_image", counting)
    return counts


def test_prepare_decodes_each_file_once_and_writes_the_same_shards(tmp_path, monkeypatch):
    root = make_class_folder(tmp_path / "src", {"normal": 12, "lesion": 12})
    write_image(root / "lesion" / "colour.png", random_image(np.random.default_rng(1), (30, 30, 3)))
    (root / "normal" / "broken.png").write_bytes(b"not a png at all")
    counts = _count_decodes(monkeypatch)
    once = prepare_source(str(root), tmp_path / "once", SIZE, 1, max_bad_fraction=0.2, shard_bytes=SIZE * SIZE * 5)
    decoded_again = {name for name, count in counts.items() if count > 1}
    assert decoded_again == {"colour.png"}  # the only one asked for at another channel count than it has
    assert len(counts) == 26
    assert {s.item for s in once.manifest.skipped} == {"normal/broken.png"}
    plain = prepare_dataset(load_dataset(str(root), max_bad_fraction=0.2), tmp_path / "plain", SIZE, 1,
                            shard_bytes=SIZE * SIZE * 5)  # no stage: every image decoded by the writer
    assert [s.sha256 for s in once.manifest.shards] == [s.sha256 for s in plain.manifest.shards]
    assert sorted(p.name for p in (tmp_path / "once").iterdir()) == sorted(p.name for p in (tmp_path / "plain").iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_disk_turns_the_stage_off_and_every_image_is_still_prepared(tmp_path, caplog):
    root = make_class_folder(tmp_path / "src", {"normal": 10, "lesion": 10})
    with small_disk(tmp_path / "disk", "1m") as disk:
        filler = fill_disk(disk)
        with caplog.at_level(logging.WARNING, logger="medtk.data.staging"), DecodedStage(disk, SIZE) as stage:
            dataset = load_dataset(str(root), on_decoded=stage.keep)
            assert len(dataset.splits["train"]) > 0  # a full stage never makes a file "unreadable"
            assert not dataset.skipped
            assert all(stage.pixels(item, SIZE, 1) is None for item in dataset.splits["train"].ids)
            filler.unlink()
            result = prepare_dataset(dataset, disk / "ds", SIZE, 1, decoded=stage)
        assert [r.message for r in caplog.records].count(
            f"no room to keep decoded images in {disk} (No space left on device); each is decoded again when read") == 1
        assert sum(sum(c.values()) for c in result.manifest.counts.values()) == 20 and not result.manifest.skipped
        assert open_prepared(disk / "ds").count("train") == len(dataset.splits["train"])
