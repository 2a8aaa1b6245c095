"""Peak memory and time of decoding one image, per kind of file, through `medtk.runtime.imaging.read_image`.

    .venv/bin/python benchmarks/decode_memory.py [--side 3000] [--repeats 3] [--kinds png16,dicom16_window]

Each kind is written once (a smooth gradient with a disc, the same picture for every kind, `side` x `side`)
and decoded `repeats` times, each in a fresh subprocess: the child decodes a 64x64 file of the same kind
first (libraries and codecs loaded), then resets its peak RSS (`/proc/self/clear_refs` 5), decodes the
big file once and reports VmHWM - VmRSS before the decode. Bytes per pixel = that peak / (side x side);
"above the file" subtracts the encoded file's size (the decode reads the whole file into memory). Prints a
Markdown table (median of the repeats, and their spread max - min) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np


def picture(side: int, dtype) -> np.ndarray:
    """A gradient with a bright disc over the dtype's full range (compresses like a radiograph, not like noise)."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
    values = 0.6 * x + 0.4 * (((y - 0.4) ** 2 + (x - 0.7) ** 2) < 0.0625)
    return np.round(values / values.max() * np.iinfo(dtype).max).astype(dtype)


def _raster(suffix: str, dtype, colour: bool = False) -> Callable[[Path, int], Path]:
    def write(folder: Path, side: int) -> Path:
        pixels = picture(side, dtype)
        if colour:
            pixels = np.dstack([pixels, pixels[::-1], pixels[:, ::-1]])
        path = folder / f"image_{side}{suffix}"
        assert cv2.imwrite(str(path), pixels)
        return path

    return write


def _dicom(photometric: str = "MONOCHROME2", window: bool = False, colour: bool = False,
           deflated: bool = False) -> Callable[[Path, int], Path]:
    def write(folder: Path, side: int) -> Path:
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

        dataset = Dataset()
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian if deflated else ExplicitVRLittleEndian
        dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR
        dataset.SOPInstanceUID = generate_uid()
        dataset.Modality = "CR"
        pixels = picture(side, np.uint8 if colour else np.uint16)
        if colour:
            pixels = np.dstack([pixels, pixels[::-1], pixels[:, ::-1]])
        dataset.Rows, dataset.Columns = side, side
        dataset.SamplesPerPixel = 3 if colour else 1
        dataset.PhotometricInterpretation = "RGB" if colour else photometric
        if colour:
            dataset.PlanarConfiguration = 0
        dataset.BitsAllocated = dataset.BitsStored = 8 if colour else 16
        dataset.HighBit = dataset.BitsStored - 1
        dataset.PixelRepresentation = 0
        if window:
            dataset.RescaleSlope, dataset.RescaleIntercept = 1, -1024
            dataset.WindowCenter, dataset.WindowWidth = 30000, 40000
        dataset.PixelData = pixels.tobytes()
        path = folder / f"image_{side}_{photometric}{'_rgb' if colour else ''}{'_deflated' if deflated else ''}.dcm"
        pydicom.dcmwrite(path, dataset, enforce_file_format=True)
        return path

    return write


KINDS: dict[str, Callable[[Path, int], Path]] = {
    "png8": _raster(".png", np.uint8),
    "png16": _raster(".png", np.uint16),
    "tiff16": _raster(".tif", np.uint16),
    "jpeg": _raster(".jpg", np.uint8),
    "rgb_png8": _raster(".png", np.uint8, colour=True),
    "rgb_png16": _raster(".png", np.uint16, colour=True),
    "dicom16_window": _dicom(window=True),
    "dicom16_monochrome1": _dicom("MONOCHROME1"),
    "dicom_rgb8": _dicom(colour=True),
    "dicom16_deflated": _dicom(deflated=True),
}


def _status(field: str) -> int:
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def child(small: Path, big: Path) -> None:
    """Runs in a fresh interpreter: warm up on `small`, then measure the decode of `big`."""
    from medtk.runtime.imaging import read_image

    read_image(small)
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here
    started = time.perf_counter()
    decoded = read_image(big, max_pixels=10**9)
    seconds = time.perf_counter() - started
    print(json.dumps({"peak": _status("VmHWM") - before, "seconds": seconds, "shape": list(decoded.pixels.shape)}))


def measure(kind: str, folder: Path, side: int, repeats: int) -> dict:
    small, big = KINDS[kind](folder, 64), KINDS[kind](folder, side)
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, __file__, "--child", str(small), str(big)],
                              capture_output=True, text=True, timeout=600, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    pixels = side * side
    per_pixel = [run["peak"] / pixels for run in runs]
    seconds = [run["seconds"] for run in runs]
    return {"kind": kind, "file_mb": big.stat().st_size / 2**20, "peak_mb": statistics.median(r["peak"] for r in runs) / 2**20,
            "bytes_per_pixel": statistics.median(per_pixel), "spread": max(per_pixel) - min(per_pixel),
            "above_file": statistics.median(per_pixel) - big.stat().st_size / pixels,
            "ms": statistics.median(seconds) * 1000, "ms_spread": (max(seconds) - min(seconds)) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{args.side}x{args.side} pixels, {args.repeats} runs per kind (median; spread = max - min)\n")
    print("| kind | file MB | peak MB | bytes/pixel (spread) | above the file | decode ms (spread) |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds.split(","):
            row = measure(kind, Path(folder), args.side, args.repeats)
            print(f"| {kind} | {row['file_mb']:.2f} | {row['peak_mb']:.0f} | {row['bytes_per_pixel']:.1f} "
                  f"({row['spread']:.1f}) | {row['above_file']:.1f} | {row['ms']:.0f} ({row['ms_spread']:.0f}) |",
                  flush=True)


if __name__ == "__main__":
    main()
