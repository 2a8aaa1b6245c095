"""Mapping to 8 bits by table gives the bytes of the float64 arithmetic it replaced, on every kind of image.

The reference functions below are the float path as it stood before the tables (commit 807f0c0): a copy
of the image in float64 or int64, then the arithmetic. Images are random over each type's whole range
with its edge values set, large enough to be looked up in a table (more pixels than values) and small
enough not to be (the arithmetic applied block by block).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

from medtk.runtime.imaging import read_image
from medtk.runtime.intensity import FULL_RANGE, MINMAX, to_uint8
from medtk.runtime.lookup import BLOCK_PIXELS, by_rows, per_value, tabulated
from tests.runtime.dicom_builders import image_dataset, write_dicom

RNG = np.random.default_rng(21)
SHAPES = {"table": (300, 301), "rows": (7, 9)}  # 90,300 pixels > 65,536 values; 63 pixels < 256 values


def random_image(shape, dtype, low=None, high=None) -> np.ndarray:
    info = np.iinfo(dtype)
    low, high = info.min if low is None else low, info.max if high is None else high
    image = RNG.integers(low, high, shape, endpoint=True, dtype=np.int64).astype(dtype)
    image.flat[:2] = low, high  # both ends of the range, always
    return image


def float_to_uint8(image: np.ndarray, mapping: str = FULL_RANGE, bit_depth: int | None = None) -> np.ndarray:
    """`to_uint8` as it was: per-pixel float64/int64 arithmetic on the whole image."""
    if image.dtype == np.uint8 and bit_depth in (None, 8):
        return image
    if mapping == MINMAX:
        values = image.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            return np.zeros(image.shape, np.uint8)
        return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)
    if image.dtype.kind == "f":
        scale = 255.0 if float(image.max()) <= 1.0 else 1.0
        return np.round(image.astype(np.float64) * scale).astype(np.uint8)
    top = (1 << (bit_depth or 16)) - 1
    values = np.clip(image.astype(np.int64), 0, top)
    return ((values * 255 + top // 2) // top).astype(np.uint8)


def float_dicom_gray(dataset: Dataset, mapping: str) -> np.ndarray:
    """A gray DICOM's pixels as the float path mapped them: modality LUT, VOI LUT or window, else the
    stored range; MONOCHROME1 inverted."""
    values = apply_modality_lut(dataset.pixel_array, dataset)
    image = _float_voi(values, dataset)
    if image is None and mapping == MINMAX:
        image = float_to_uint8(values.astype(np.float64), MINMAX)
    elif image is None:
        bits, signed = int(dataset.BitsStored), int(dataset.PixelRepresentation) == 1
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        stored = np.arange(low, high + 1) if "ModalityLUTSequence" in dataset else np.array([low, high])
        ends = apply_modality_lut(stored.astype(np.int64), dataset)
        first, last = float(ends.min()), float(ends.max())
        scaled = (values.astype(np.float64) - first) * (255.0 / (last - first))
        image = np.round(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    return 255 - image if dataset.PhotometricInterpretation == "MONOCHROME1" else image


def _float_voi(values: np.ndarray, dataset: Dataset) -> np.ndarray | None:
    try:
        if "VOILUTSequence" in dataset:
            count, first = dataset.VOILUTSequence[0].LUTDescriptor[:2]
            shown = apply_voi(np.clip(np.rint(values), first, first + count - 1).astype(np.int64), dataset)
            entries = apply_voi(np.arange(first, first + count, dtype=np.int64), dataset)
            low, high = float(entries.min()), float(entries.max())
        elif "WindowCenter" in dataset:
            shown = apply_windowing(values, dataset)
            low, high = (float(end) for end in apply_windowing(np.array([-np.inf, np.inf]), dataset))
        else:
            return None
    except ValueError:
        return None
    if not high > low:
        return None
    return np.round(np.clip((shown.astype(np.float64) - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.dtype(">u2"), np.dtype(">i2"),
                                   np.uint32, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300, 301), (300, 301, 3), (7, 9), (5,)])
def test_a_per_value_function_by_table_or_by_rows_is_the_function(dtype, shape):
    dtype = np.dtype(dtype)
    pixels = RNG.random(shape).astype(dtype) if dtype.kind == "f" else random_image(shape, dtype)

    def transform(values):
        return np.round(np.clip(values.astype(np.float64) * 0.37 - 11.5, 0, 255)).astype(np.uint8)

    mapped = per_value(pixels, transform)
    assert mapped.dtype == np.uint8 and mapped.flags.c_contiguous
    np.testing.assert_array_equal(mapped, transform(pixels))
    reversed_channels = pixels[..., ::-1]  # a strided view, as OpenCV's BGR is read as RGB
    np.testing.assert_array_equal(per_value(reversed_channels, transform), transform(reversed_channels))


def test_large_images_are_looked_up_in_blocks():
    pixels = random_image((3 * BLOCK_PIXELS // 1000 + 5, 1000), np.uint16)
    assert tabulated(pixels) and not tabulated(pixels[:7, :9]) and not tabulated(pixels.astype(np.int32))
    calls = []
    by_rows(pixels, lambda block: calls.append(block.size) or np.zeros(block.shape, np.uint8))
    assert len(calls) == 4 and max(calls) <= BLOCK_PIXELS


@pytest.mark.parametrize("size", sorted(SHAPES))
@pytest.mark.parametrize("mapping", [FULL_RANGE, MINMAX])
@pytest.mark.parametrize("dtype, bit_depth", [(np.uint16, None), (np.uint16, 16), (np.uint16, 12), (np.uint16, 10),
                                              (np.int16, 12), (np.uint8, 4), (np.int8, 7), (np.uint32, 20),
                                              (np.float32, None), (np.float64, None)])
def test_to_uint8_gives_the_bytes_of_the_float_path(size, mapping, dtype, bit_depth):
    shape = SHAPES[size]
    if np.dtype(dtype).kind == "f":
        images = [RNG.random(shape).astype(dtype), (RNG.random(shape) * 255).astype(dtype)]
        images[0].flat[:2], images[1].flat[:2] = (0.0, 1.0), (0.0, 255.0)
    else:
        images = [random_image(shape, dtype), random_image(shape + (3,), dtype)]  # values above 2^bits too
    for image in images:
        np.testing.assert_array_equal(to_uint8(image, mapping, bit_depth), float_to_uint8(image, mapping, bit_depth))


def _lut_item(count: int, first: int, entries: np.ndarray) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [count, first, 16]
    item.add_new("LUTData", "US", [int(value) for value in entries])
    return item


DICOM_KINDS = {
    "16-bit, stored range": dict(dtype=np.uint16),
    "12 of 16 bits, values above 4095": dict(dtype=np.uint16, bits_stored=12),
    "signed 16-bit": dict(dtype=np.int16, signed=True),
    "signed 12-bit": dict(dtype=np.int16, signed=True, bits_stored=12, low=-2048, high=2047),
    "rescale and window": dict(dtype=np.int16, signed=True, RescaleSlope=0.37, RescaleIntercept=-1024.5,
                               WindowCenter=40, WindowWidth=400),
    "two windows": dict(dtype=np.uint16, WindowCenter=[30000, 100], WindowWidth=[20000, 50]),
    "window, edge values": dict(dtype=np.uint16, WindowCenter=32768, WindowWidth=2),
    "LINEAR_EXACT": dict(dtype=np.uint16, WindowCenter=1000.5, WindowWidth=0.5, VOILUTFunction="LINEAR_EXACT"),
    "SIGMOID": dict(dtype=np.uint16, WindowCenter=20000, WindowWidth=9000, VOILUTFunction="SIGMOID"),
    "window width 0 (unusable)": dict(dtype=np.uint16, WindowCenter=20000, WindowWidth=0),
    "MONOCHROME1": dict(dtype=np.uint16, photometric="MONOCHROME1"),
    "MONOCHROME1, window": dict(dtype=np.uint16, photometric="MONOCHROME1", WindowCenter=30000, WindowWidth=20000),
    "8-bit, window": dict(dtype=np.uint8, WindowCenter=100, WindowWidth=50),
    "signed 8-bit": dict(dtype=np.int8, signed=True),
    "32-bit": dict(dtype=np.uint32),
    "VOI LUT": dict(dtype=np.uint16, high=5000, VOILUTSequence=[_lut_item(4096, 100, RNG.integers(0, 65535, 4096))]),
    "modality LUT": dict(dtype=np.uint16, bits_stored=12, high=3000,
                         ModalityLUTSequence=[_lut_item(2048, 0, np.sort(RNG.integers(0, 65535, 2048)))]),
}


@pytest.mark.parametrize("size", sorted(SHAPES))
@pytest.mark.parametrize("kind", sorted(DICOM_KINDS))
def test_dicom_decoding_gives_the_bytes_of_the_float_path(kind, size, tmp_path):
    options = dict(DICOM_KINDS[kind])
    dtype, low, high = options.pop("dtype"), options.pop("low", None), options.pop("high", None)
    path = write_dicom(tmp_path / "x.dcm", image_dataset(random_image(SHAPES[size], dtype, low, high), **options))
    dataset = pydicom.dcmread(path)
    for mapping in (FULL_RANGE, MINMAX):
        np.testing.assert_array_equal(read_image(path, mapping=mapping).pixels, float_dicom_gray(dataset, mapping))


@pytest.mark.parametrize("dtype, low, high", [(np.uint16, 0, 4095), (np.uint16, 1000, 1040), (np.int16, -2048, -1900),
                                              (np.int16, -5, 5), (np.uint8, 7, 9), (np.int8, -3, 100)])
@pytest.mark.parametrize("shape", [(300, 301), (7, 9), (20, 30, 3)])
def test_a_table_is_computed_over_the_span_of_bit_patterns_present(dtype, low, high, shape):
    pixels = random_image(shape, dtype, low, high)
    patterns = pixels.view(f"u{pixels.dtype.itemsize}")
    span_values = int(patterns.max()) - int(patterns.min()) + 1  # int16 -5..5: 0..5 and 65531..65535
    computed = []

    def transform(values):
        computed.append(values.size)
        return np.round(np.clip(values.astype(np.float64) * 0.37 - 11.5, 0, 255)).astype(np.uint8)

    np.testing.assert_array_equal(per_value(pixels, transform), transform(pixels))
    assert tabulated(pixels) == (pixels.size >= span_values)
    assert computed[0] == (span_values if tabulated(pixels) else pixels.size)  # by rows: one block, so small


REAL_FILES = ["CT_small.dcm", "MR_small.dcm", "image_dfl.dcm", "JPEG2000.dcm", "liver_1frame.dcm",
              "examples_overlay.dcm", "MR_small_RLE.dcm"]


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_dicom_files_give_the_bytes_of_the_float_path(name):
    """pydicom's own test files (CT with rescale, MR with a window, 8-bit deflated, JPEG 2000, 1-bit, 12-bit),
    and the CT and MR enlarged to 512x512 where a table is used for every value span."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    dataset = pydicom.dcmread(path)
    for mapping in (FULL_RANGE, MINMAX):
        np.testing.assert_array_equal(read_image(path, mapping=mapping).pixels, float_dicom_gray(dataset, mapping))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_real_dicom_files_enlarged_to_512_give_the_bytes_of_the_float_path(name, tmp_path):
    import cv2
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file(name))
    pixels = dataset.pixel_array
    dataset.PixelData = cv2.resize(pixels, (512, 512), interpolation=cv2.INTER_LINEAR).astype(pixels.dtype).tobytes()
    dataset.Rows = dataset.Columns = 512
    path = tmp_path / name
    dataset.save_as(path)
    dataset = pydicom.dcmread(path)
    assert tabulated(dataset.pixel_array)
    for mapping in (FULL_RANGE, MINMAX):
        np.testing.assert_array_equal(read_image(path, mapping=mapping).pixels, float_dicom_gray(dataset, mapping))
