"""The medmnist: source against a real HTTP server on 127.0.0.1 (this machine is offline)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from tests.data.datafiles import write_npz

from medtk.data import load_dataset
from medtk.data.medmnist import URL_ENV, fetch, parse_spec
from medtk.errors import DataError


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_md5_and_lands_in_the_cache(http_root, isolated_cache):
    folder, url = http_root
    served = write_npz(folder / "breastmnist_64.npz")
    path = fetch("breastmnist", 64, base_url=url, md5=_md5(served))
    assert path == isolated_cache / "breastmnist_64.npz"
    assert path.read_bytes() == served.read_bytes()
    assert [p.name for p in isolated_cache.iterdir()] == ["breastmnist_64.npz"]  # no temp file left
    served.unlink()  # the second lookup is served by the cache, not the server
    assert fetch("breastmnist", 64, base_url=url, md5="unused") == path


def test_checksum_mismatch_deletes_the_download(http_root, isolated_cache, monkeypatch):
    folder, url = http_root
    write_npz(folder / "pneumoniamnist.npz")  # not the official file: its md5 differs
    monkeypatch.setenv(URL_ENV, url)
    with pytest.raises(DataError, match=r"pneumoniamnist\.npz\?download=1: checksum mismatch .* "
                                        r"expected 28209eda62fecd6e6a2d98b1501bb15f"):
        load_dataset("medmnist:pneumoniamnist")
    assert not isolated_cache.exists() or list(isolated_cache.iterdir()) == []


def test_unreachable_server_says_where_to_put_the_file(http_root, isolated_cache):
    _, url = http_root
    with pytest.raises(DataError, match=r"dermamnist_128\.npz\?download=1: download failed .*put dermamnist_128\.npz"):
        fetch("dermamnist", 128, base_url=url)  # the server has no such file: HTTP 404


def test_data_dir_is_searched_first(pneumonia_npz, isolated_cache, monkeypatch):
    monkeypatch.setenv("MEDTK_DATA_DIR", str(pneumonia_npz.parent))
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9")  # never contacted
    dataset = load_dataset("medmnist:pneumoniamnist")
    assert dataset.source == "medmnist:pneumoniamnist"
    assert dataset.class_names == ("normal", "pneumonia") and len(dataset.splits["train"]) == 4708


def test_cached_file_is_used_without_network(pneumonia_npz, isolated_cache, monkeypatch):
    isolated_cache.mkdir(parents=True)
    shutil.copyfile(pneumonia_npz, isolated_cache / "pneumoniamnist.npz")
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9")
    assert len(load_dataset("medmnist:pneumoniamnist", subset=10).splits["test"]) == 10


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pneumonia", r"unknown MedMNIST dataset 'pneumonia'; did you mean pneumoniamnist"),
        ("chestmnist", r"chestmnist is multi-label \(14 findings per image\)"),
        ("bloodmnist@100", r"image size '100' is not offered; expected one of 28, 64, 128, 224"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_spec(spec)


def test_size_defaults_to_28():
    assert parse_spec("OrganAMNIST") == ("organamnist", 28)
    assert parse_spec("organamnist@224") == ("organamnist", 224)
