"""The bad-data pass: decode every file once, drop the unreadable ones, fail if too many are bad.

Design: this pass keeps the image shape, not the pixels, so memory stays bounded for any dataset size;
`Split.load` decodes again lazily. A caller that will need every image at model size (`medtk prepare`,
and `medtk train` preparing into its run folder) passes `on_decoded`, which keeps them on disk (`medtk.data.staging.DecodedStage`) so they
are not decoded twice. Decoding runs in a thread pool: OpenCV and pydicom's pixel decoders release the
GIL for the heavy part.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable

import numpy as np

from medtk.data.base import Skipped
from medtk.data.catalog import Catalog, shape_name
from medtk.errors import DataError, ImageDecodeError
from medtk.progress import track
from medtk.runtime.imaging import decode_image

SHOWN = 3


def check_files(
    catalog: Catalog, max_bad_fraction: float, threads: int | None = None,
    on_decoded: Callable[[str, np.ndarray], None] | None = None,
) -> tuple[Catalog, list[Skipped]]:
    """The catalog without unreadable files, and the skipped files with reasons; `on_decoded(item id,
    image)` is handed every image the check decoded (`medtk.data.staging.DecodedStage.keep`)."""
    if catalog.files is None:
        return catalog, []
    total = len(catalog.files)
    results: list[str | ImageDecodeError] = [""] * total

    def check(index: int) -> None:
        try:
            image = decode_image(catalog.files[index])
        except (ImageDecodeError, OSError) as error:
            results[index] = ImageDecodeError(_reason(error, str(catalog.files[index])))
            return
        results[index] = shape_name(image.shape)
        if on_decoded is not None:
            on_decoded(catalog.ids[index], image)

    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
        for _ in track(pool.map(check, range(total)), total, f"checking {total} images"):
            pass
    skipped = [Skipped(catalog.ids[i], str(r)) for i, r in enumerate(results) if isinstance(r, ImageDecodeError)]
    if total and len(skipped) / total > max_bad_fraction:
        shown = "; ".join(f"{s.item} ({s.reason})" for s in skipped[:SHOWN])
        raise DataError(
            f"{catalog.source}: {len(skipped)} of {total} images ({len(skipped) / total:.1%}) are unreadable, "
            f"more than max_bad_fraction={max_bad_fraction:g}: {shown}{' ...' if len(skipped) > SHOWN else ''}"
        )
    keep = np.array([i for i, r in enumerate(results) if not isinstance(r, ImageDecodeError)], dtype=np.int64)
    checked = catalog.take(keep)
    shapes = [results[i] for i in keep]
    return replace(checked, shapes=shapes), skipped


def _reason(error: Exception, path: str) -> str:
    """The message without its leading file path (the item id already names the file)."""
    message = str(error)
    return message[len(path) + 2 :] if message.startswith(f"{path}: ") else message
