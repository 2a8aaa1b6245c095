"""Fixtures for the data-source tests: a real HTTP server on 127.0.0.1 and an isolated download cache."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@pytest.fixture
def http_root(tmp_path: Path):
    """(folder, base URL) of a real HTTP server on 127.0.0.1 serving that folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty cache folder and no $MEDTK_DATA_DIR, so medmnist lookups cannot find the real files."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("MEDTK_DATA_DIR", raising=False)
    monkeypatch.delenv("MEDTK_MEDMNIST_URL", raising=False)
    return cache / "medtk"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass
