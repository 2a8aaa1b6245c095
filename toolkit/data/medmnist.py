"""`medmnist:NAME[@SIZE]`: find the official file locally, else download it from Zenodo and verify its md5.

Lookup order: $MEDTK_DATA_DIR, then the cache ($XDG_CACHE_HOME/medtk or ~/.cache/medtk), then a
download into the cache. The download goes to a temporary file beside the target and is renamed
only after the md5 matches, so an interrupted or tampered download never looks like a dataset.
$MEDTK_MEDMNIST_URL replaces the Zenodo base URL (a mirror, or a local server in tests).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from medtk.data.catalog import Catalog
from medtk.data.medmnist_info import INFO, SIZES, ZENODO_RECORD, file_name
from medtk.data.npz import load_npz
from medtk.errors import DataError
from medtk.progress import counter

URL_ENV = "MEDTK_MEDMNIST_URL"
DATA_DIR_ENV = "MEDTK_DATA_DIR"
CHUNK = 1 << 20


def load_medmnist(spec: str, *, base_url: str | None = None) -> Catalog:
    """`spec` is `NAME` or `NAME@SIZE` (e.g. `pneumoniamnist@224`)."""
    name, size = parse_spec(spec)
    return load_npz(fetch(name, size, base_url=base_url), source=f"medmnist:{spec}")


def parse_spec(spec: str) -> tuple[str, int]:
    name, _, size_text = spec.strip().lower().partition("@")
    if name not in INFO:
        close = difflib.get_close_matches(name, INFO, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DataError(f"medmnist:{spec}: unknown MedMNIST dataset {name!r}; {hint}known: {', '.join(INFO)}")
    if INFO[name].multi_label:
        raise DataError(f"medmnist:{spec}: {name} is multi-label ({len(INFO[name].labels)} findings per image); "
                        "medtk trains single-label classifiers")
    if not size_text:
        return name, 28
    if not size_text.isdigit() or int(size_text) not in SIZES:
        raise DataError(f"medmnist:{spec}: image size {size_text!r} is not offered; expected one of "
                        f"{', '.join(map(str, SIZES))}")
    return name, int(size_text)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "medtk"


def fetch(name: str, size: int, *, base_url: str | None = None, md5: str | None = None) -> Path:
    """Path of the verified official file, downloading it into the cache when it is nowhere local."""
    filename = file_name(name, size)
    data_dir = os.environ.get(DATA_DIR_ENV)
    for folder in ([Path(data_dir)] if data_dir else []) + [cache_dir()]:
        if (folder / filename).is_file():
            return folder / filename
    base = (base_url or os.environ.get(URL_ENV) or ZENODO_RECORD).rstrip("/")
    target = cache_dir() / filename
    download(f"{base}/{filename}?download=1", target, md5 or INFO[name].md5[size])
    return target


def download(url: str, target: Path, md5: str) -> None:
    """Stream `url` to `target` with progress; keep it only if its md5 is `md5`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.md5()
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with counter(f"downloading {target.name}", total, " bytes") as advance:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {md5}); "
                            "the download was deleted")
        os.replace(temporary, target)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(f"{url}: download failed ({reason}); offline? put {target.name} in "
                        f"${DATA_DIR_ENV} or {target.parent}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)

