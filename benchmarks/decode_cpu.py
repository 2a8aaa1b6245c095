"""CPU time of decoding one 512x512 image into model input, and of its mapping to 8 bits (issue 25).

    .venv/bin/python benchmarks/decode_cpu.py [--repeats 200] [--size 224]

Files: PNG 8- and 16-bit (a gradient with a disc, 512x512); pydicom's CT_small.dcm (signed 16-bit,
rescale, no window: the stored range) and MR_small.dcm (16-bit with a window) enlarged to 512x512 and
written back with their own headers; pydicom's image_dfl.dcm (512x512 8-bit, deflated) and the two
small files as they ship. Per file, `time.process_time` (CPU seconds of this process, all its threads)
around: `read_image` + `prepare_input(size, 1)` (what training and the device do per image), the mapping
to 8 bits by the runtime (tables, lookup.py), and the same mapping by the per-pixel float64 arithmetic it
replaced (the reference kept in tests/runtime/test_lookup.py). Median of `repeats` calls and the spread
(10th-90th percentile). Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pydicom
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the float64 reference lives in the tests

from medtk.runtime.dicom import _gray  # noqa: E402  (the mapping step alone, as dicom_pixels calls it)
from medtk.runtime.imaging import prepare_input, read_image  # noqa: E402
from medtk.runtime.intensity import FULL_RANGE, to_uint8  # noqa: E402
from tests.runtime.test_lookup import float_dicom_gray, float_to_uint8  # noqa: E402

SIDE = 512


def picture(dtype) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / (SIDE - 1)
    values = 0.6 * x + 0.4 * (((y - 0.4) ** 2 + (x - 0.7) ** 2) < 0.0625)
    return np.round(values / values.max() * np.iinfo(dtype).max).astype(dtype)


def enlarged(name: str, folder: Path) -> Path:
    """A pydicom test file's pixels enlarged to SIDE x SIDE, written with the file's own header."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    pixels = dataset.pixel_array
    dataset.PixelData = cv2.resize(pixels, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR).astype(pixels.dtype).tobytes()
    dataset.Rows = dataset.Columns = SIDE
    path = folder / f"{Path(name).stem}_{SIDE}.dcm"
    dataset.save_as(path)
    return path


def files(folder: Path) -> dict[str, Path]:
    out = {}
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        out[f"png{bits} {SIDE}x{SIDE}"] = folder / f"png{bits}.png"
        cv2.imwrite(str(out[f"png{bits} {SIDE}x{SIDE}"]), picture(dtype))
    out[f"CT_small (16-bit signed, rescale) {SIDE}x{SIDE}"] = enlarged("CT_small.dcm", folder)
    out[f"MR_small (16-bit signed, window) {SIDE}x{SIDE}"] = enlarged("MR_small.dcm", folder)
    out["image_dfl (8-bit, deflated) 512x512"] = Path(get_testdata_file("image_dfl.dcm"))
    out["CT_small 128x128"] = Path(get_testdata_file("CT_small.dcm"))
    out["MR_small 64x64"] = Path(get_testdata_file("MR_small.dcm"))
    return out


def cpu_ms(call: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median and 10th/90th percentile of the CPU milliseconds of `call`."""
    call()  # warm: libraries loaded, caches filled as in a long-running process
    times = []
    for _ in range(repeats):
        started = time.process_time()
        call()
        times.append((time.process_time() - started) * 1e3)
    low, median, high = np.percentile(times, [10, 50, 90])
    return float(median), float(low), float(high)


def mappings(path: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    """(the runtime's mapping, the float64 reference) of the decoded pixels, checked to give the same bytes."""
    if path.suffix == ".dcm":
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array  # cached on the data set: the reference then maps only
        bits = int(dataset.BitsStored)
        table = lambda: _gray(pixels, dataset, path.name, FULL_RANGE, bits)  # noqa: E731
        reference = lambda: float_dicom_gray(dataset, FULL_RANGE)  # noqa: E731
    else:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        table = lambda: to_uint8(pixels)  # noqa: E731
        reference = lambda: float_to_uint8(pixels)  # noqa: E731
    if not np.array_equal(table(), reference()):
        raise SystemExit(f"{path.name}: the table and the float64 reference disagree")
    return table, reference


def cpu_flags() -> str:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " ".join(sorted({flag for flag in re.findall(r"\w+", text) if flag in wanted})) or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--size", type=int, default=224, help="model input size prepare_input resizes to")
    args = parser.parse_args()
    if args.repeats < 5 or args.size < 1:
        parser.error("--repeats must be >= 5 and --size >= 1")

    def show(value: tuple[float, float, float]) -> str:
        return f"{value[0]:.3f} ({value[1]:.3f}-{value[2]:.3f})"

    print(f"CPU flags: {cpu_flags()}; repeats {args.repeats}; prepare_input to {args.size}x{args.size}x1\n")
    print("| file | read_image + prepare_input, CPU ms | mapping to 8 bits: table | float64 per pixel | ratio |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name, path in files(Path(folder)).items():
            total = cpu_ms(lambda: prepare_input(read_image(path).pixels, args.size, 1), args.repeats)
            table, reference = mappings(path)
            fast, slow = cpu_ms(table, args.repeats), cpu_ms(reference, args.repeats)
            print(f"| {name} | {show(total)} | {show(fast)} | {show(slow)} | {slow[0] / max(fast[0], 1e-6):.1f}x |")


if __name__ == "__main__":
    main()
