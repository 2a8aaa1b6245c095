"""Fuzzing (Hypothesis, bounded): damaged models, DICOM headers and raster headers.

A damaged sealed model either loads and predicts exactly as the original or is refused with a
one-line `ModelError`, never a crash (the seal is verified before the interpreter sees the bytes; a
subprocess checks that a batch of damaged files cannot take the process down). A damaged image is a
uint8 picture or a one-line `ImageDecodeError`/`RuntimeInputError`, and the `Classifier` stays usable.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from medtk.errors import ImageDecodeError, ModelError, RuntimeInputError
from medtk.runtime.classifier import Classifier
from medtk.runtime.imaging import decode_image
from medtk.runtime.integrity import SLOT_LENGTH, read_seal
from medtk.runtime.metadata import METADATA_NAME
from tests.robustness.conftest import png_bytes

FUZZ = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def reference(clinical_model, gray_image):
    classifier = Classifier(clinical_model, num_threads=1)
    return classifier, classifier.predict(gray_image).probabilities


def _outcome(path: Path, image: np.ndarray) -> dict | None:
    """Predictions of the damaged model, or None when it was refused (with a one-line ModelError)."""
    try:
        return Classifier(path, num_threads=1).predict(image).probabilities
    except ModelError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return None


def _seal_region(model: bytes) -> tuple[int, int]:
    _, start = read_seal(model, METADATA_NAME, "model")
    return start - 40, start + SLOT_LENGTH + 40


@FUZZ
@given(where=st.floats(0.0, 1.0, exclude_max=True), near_seal=st.booleans(), bit=st.integers(0, 7))
def test_bit_flips_are_refused_or_change_nothing(clinical_model, gray_image, reference, tmp_path, where, near_seal, bit):
    model = bytearray(clinical_model.read_bytes())
    low, high = _seal_region(bytes(model)) if near_seal else (0, len(model))
    offset = low + int(where * (high - low))
    model[offset] ^= 1 << bit
    path = tmp_path / "flipped.tflite"
    path.write_bytes(bytes(model))
    outcome = _outcome(path, gray_image)
    classifier, expected = reference
    assert outcome is None or outcome == expected
    assert classifier.predict(gray_image).probabilities == expected  # the loaded classifier is unaffected


@FUZZ
@given(where=st.floats(0.0, 1.0, exclude_max=True))
def test_truncations_are_refused(clinical_model, gray_image, tmp_path, where):
    model = clinical_model.read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(model[: int(where * len(model))])
    assert _outcome(path, gray_image) is None


def test_a_batch_of_damaged_models_cannot_crash_the_process(clinical_model, tmp_path):
    """Seeded flips and cuts in a fresh interpreter: a segfault would show as a negative exit code."""
    script = textwrap.dedent(f"""
        import numpy as np, warnings
        from pathlib import Path
        from medtk.errors import ModelError
        from medtk.runtime.classifier import Classifier
        model = Path({str(clinical_model)!r}).read_bytes()
        rng = np.random.default_rng(10)
        refused = loaded = 0
        for case in range(40):
            data = bytearray(model)
            if case % 4 == 3:
                data = data[: int(rng.integers(0, len(data)))]
            else:
                for _ in range(int(rng.integers(1, 8))):
                    data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
            path = Path({str(tmp_path)!r}) / f"case{{case}}.tflite"
            path.write_bytes(bytes(data))
            try:
                Classifier(path, num_threads=1).predict(np.zeros((8, 8), np.uint8))
                loaded += 1
            except ModelError:
                refused += 1
        print(refused, loaded)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    refused, loaded = map(int, done.stdout.split())
    assert refused + loaded == 40 and refused >= 36


DICOM_FIELDS = {
    "Rows": ("US", st.integers(0, 65535)),
    "Columns": ("US", st.integers(0, 65535)),
    "BitsAllocated": ("US", st.sampled_from([0, 1, 7, 8, 12, 16, 32, 64])),
    "BitsStored": ("US", st.integers(0, 70)),
    "HighBit": ("US", st.integers(0, 70)),
    "SamplesPerPixel": ("US", st.integers(0, 5)),
    "PixelRepresentation": ("US", st.integers(0, 3)),
    "NumberOfFrames": ("IS", st.sampled_from(["0", "-1", "2", "999999999", "abc"])),
    "PhotometricInterpretation": ("CS", st.sampled_from(["MONOCHROME1", "RGB", "YBR_FULL", "PALETTE COLOR", "X"])),
    "WindowWidth": ("DS", st.sampled_from(["0", "-1", "1e30", "1", "nan"])),
    "WindowCenter": ("DS", st.sampled_from(["0", "-1e30", "1e30", "inf"])),
    "RescaleSlope": ("DS", st.sampled_from(["0", "-1", "1e30", "1e-30"])),
    "RescaleIntercept": ("DS", st.sampled_from(["0", "-1e30", "1e30"])),
}


@FUZZ
@given(source=st.sampled_from(["CT_small.dcm", "MR_small.dcm"]),
       names=st.lists(st.sampled_from(sorted(DICOM_FIELDS)), min_size=1, max_size=3, unique=True),
       data=st.data())
def test_fuzzed_dicom_headers_decode_or_are_refused(reference, gray_image, tmp_path, source, names, data):
    dataset = pydicom.dcmread(get_testdata_file(source))
    path = tmp_path / "fuzzed.dcm"
    try:
        for name in names:
            vr, values = DICOM_FIELDS[name]
            dataset.add_new(pydicom.datadict.tag_for_keyword(name), vr, data.draw(values))
        dataset.save_as(path)
    except Exception:  # pydicom will not write some values; files with them are written by other tools
        assume(False)
    try:
        image = decode_image(path, max_pixels=4_000_000)
        assert image.dtype == np.uint8 and image.ndim in (2, 3)
    except ImageDecodeError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    classifier, expected = reference
    try:
        classifier.predict(path)
    except RuntimeInputError as error:
        assert "\n" not in str(error)
    assert classifier.predict(gray_image).probabilities == expected


@FUZZ
@given(kind=st.sampled_from(["png", "jpeg", "tiff", "bmp"]), width=st.integers(0, 2**31 - 1),
       height=st.integers(0, 2**31 - 1), small=st.booleans(), depth=st.sampled_from([0, 1, 8, 16, 3]),
       colour=st.sampled_from([0, 2, 3, 4, 6, 7]))
def test_absurd_raster_headers_decode_or_are_refused(tmp_path, kind, width, height, small, depth, colour):
    if small:  # within the limit, so the decoder itself meets the odd header
        width, height = width % 300, height % 300
    path = tmp_path / f"odd.{kind}"
    path.write_bytes(_raster(kind, width, height, depth, colour))
    try:
        image = decode_image(path, max_pixels=1_000_000)
        assert image.dtype == np.uint8 and image.shape[0] * image.shape[1] <= 1_000_000
    except ImageDecodeError as error:
        assert "\n" not in str(error) and str(path) in str(error)


def _raster(kind: str, width: int, height: int, depth: int, colour: int) -> bytes:
    if kind == "png":
        return png_bytes(width, height, depth=depth, colour=colour, rows=2)
    if kind == "jpeg":
        w, h = width % 65536, height % 65536
        frame = struct.pack(">BHHB", 8, h, w, 1) + b"\x01\x11\x00"
        return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"
    if kind == "tiff":
        entries = [(256, 4, 1, width % 2**32), (257, 4, 1, height % 2**32), (258, 3, 1, max(depth, 1)), (277, 3, 1, 1)]
        body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
        return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00\x00\x00\x00"
    info = struct.pack("<IiiHH", 40, width % 2**31, -(height % 2**31), 1, 24) + b"\x00" * 24
    return b"BM" + b"\x00" * 12 + info + b"\x00" * 64
