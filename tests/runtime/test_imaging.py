"""The shared decode/preprocess rule on real files: OpenCV-written rasters and pydicom's DICOM test files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtk.errors import ImageDecodeError
from medtk.runtime.imaging import decode_image, prepare_input, to_uint8


def _write(path: Path, pixels: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), pixels)
    return path


def _dicom(tmp_path: Path, name: str, **changes) -> Path:
    dataset = pydicom.dcmread(get_testdata_file(name))
    for key, value in changes.items():
        if value is None:
            delattr(dataset, key)
        else:
            setattr(dataset, key, value)
    target = tmp_path / f"changed_{name}"
    dataset.save_as(target)
    return target


def test_sixteen_bit_png_maps_its_full_range_not_per_image(tmp_path):
    pixels = np.full((4, 5), 1000, dtype=np.uint16)
    pixels[0, 0], pixels[1, 1] = 3000, 2000
    image = decode_image(_write(tmp_path / "x.png", pixels))
    assert image.dtype == np.uint8
    assert (image[0, 0], image[1, 1], image[2, 2]) == (12, 8, 4)  # v * 255 / 65535, rounded
    eight = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(decode_image(_write(tmp_path / "x257.png", eight.astype(np.uint16) * 257)), eight)


def test_eight_bit_is_kept_and_constant_images_become_black(tmp_path):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert np.array_equal(decode_image(_write(tmp_path / "x.png", pixels)), pixels)
    assert (to_uint8(np.full((3, 3), 7.4)) == 7).all()  # floats in [0, 255] are kept (rounded)


def test_colour_files_come_back_as_rgb(tmp_path):
    bgr = np.zeros((6, 6, 3), dtype=np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    assert decode_image(_write(tmp_path / "red.png", bgr))[0, 0].tolist() == [200, 0, 0]
    bgra = np.dstack([bgr, np.full((6, 6), 128, np.uint8)])
    assert decode_image(_write(tmp_path / "red_alpha.png", bgra)).shape == (6, 6, 3)
    assert decode_image(_write(tmp_path / "red.tif", bgr.astype(np.uint16) * 100))[0, 0].tolist() == [78, 0, 0]
    jpeg = decode_image(_write(tmp_path / "red.jpg", bgr))
    assert jpeg.shape == (6, 6, 3) and jpeg[0, 0, 0] > 150 and jpeg[0, 0, 2] < 50


def test_dicom_window_is_applied(tmp_path):
    """MR_small.dcm carries WindowCenter 600 / WindowWidth 1600 and no rescale."""
    raw = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(float)
    low, high = 600 - 0.5 - 1599 / 2, 600 - 0.5 + 1599 / 2
    expected = np.round(np.clip((raw - low) / (high - low), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(decode_image(get_testdata_file("MR_small.dcm")), expected)
    several = _dicom(tmp_path, "MR_small.dcm", WindowCenter=[600, 100], WindowWidth=[1600, 50])
    assert np.array_equal(decode_image(several), expected)  # the first window of several


def _stored_range(dataset) -> np.ndarray:
    """CT_small.dcm: BitsStored 16, signed, slope 1, intercept -1024: [-32768, 32767] - 1024 -> 0..255."""
    hu = dataset.pixel_array.astype(float) - 1024
    low, high = -32768 - 1024, 32767 - 1024
    return np.round((hu - low) * 255 / (high - low)).astype(np.uint8)


def test_dicom_without_window_maps_its_stored_range_after_rescale():
    """No window: the stored range (BitsStored, signed) through the rescale maps to 0..255, never per image."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert np.array_equal(decode_image(get_testdata_file("CT_small.dcm")), _stored_range(dataset))


def test_dicom_voi_lut_sequence_is_applied_and_preferred_over_a_window(tmp_path):
    """CT_small.dcm with a VOI LUT Sequence: 256 entries from HU -100, 16-bit ramp 0, 16, .., 4080."""
    from pydicom.dataset import Dataset

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = dataset.pixel_array.astype(np.int64) - 1024
    item = Dataset()
    item.add_new("LUTDescriptor", "SS", [256, -100, 16])  # first mapped value is signed here
    item.add_new("LUTData", "US", [16 * k for k in range(256)])
    dataset.VOILUTSequence = [item]
    dataset.WindowCenter, dataset.WindowWidth = 0, 10  # a window too: the LUT wins, as in pydicom
    path = tmp_path / "voi_lut.dcm"
    dataset.save_as(path)
    expected = np.clip(hu + 100, 0, 255).astype(np.uint8)  # the LUT's output range 0..4080 -> 0..255
    image = decode_image(path)
    assert np.array_equal(image, expected)
    assert 0 < (image == 0).sum() < image.size and (image == 255).any()  # clamped at both ends


def test_monochrome1_is_inverted(tmp_path):
    inverted = decode_image(_dicom(tmp_path, "CT_small.dcm", PhotometricInterpretation="MONOCHROME1"))
    assert np.array_equal(inverted, 255 - decode_image(get_testdata_file("CT_small.dcm")))


def test_degenerate_window_width_falls_back_to_the_stored_range(tmp_path):
    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    image = decode_image(_dicom(tmp_path, "MR_small.dcm", WindowWidth=0))
    signed_range = np.round((dataset.pixel_array + 32768.0) * 255 / 65535).astype(np.uint8)  # 16 bits, signed
    assert np.array_equal(image, signed_range)
    legacy = decode_image(_dicom(tmp_path, "MR_small.dcm", WindowWidth=0), mapping="minmax-per-image")
    assert np.array_equal(legacy, to_uint8(dataset.pixel_array.astype(np.float64), "minmax-per-image"))


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")  # pydicom, on the garbage file
def test_dicom_without_pixels_or_garbage(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"changed_CT_small\.dcm: DICOM file has no pixel data"):
        decode_image(_dicom(tmp_path, "CT_small.dcm", PixelData=None))
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 20)
    with pytest.raises(ImageDecodeError, match=r"junk\.dcm: (not a readable DICOM file|.*DICOM)"):
        decode_image(tmp_path / "junk.dcm")


def test_rgb_to_gray_and_gray_to_rgb():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    gray = prepare_input(rgb, 4, 1)
    assert gray.shape == (4, 4, 1) and gray[0, 0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    copied = prepare_input(np.full((4, 4), 77, np.uint8), 4, 3)
    assert copied.shape == (4, 4, 3) and (copied == 77).all()
    with pytest.raises(ImageDecodeError, match="unsupported channel count 2"):
        prepare_input(rgb, 4, 2)


def test_resize_rule_area_when_shrinking_exact_linear_when_enlarging():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (64, 48), dtype=np.uint8)
    small = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    assert np.array_equal(prepare_input(big, 16, 1)[..., 0], cv2.resize(big, (16, 16), interpolation=cv2.INTER_AREA))
    assert np.array_equal(prepare_input(small, 32, 1)[..., 0],
                          cv2.resize(small, (32, 32), interpolation=cv2.INTER_LINEAR_EXACT))
    assert prepare_input(rng.integers(0, 65535, (20, 20), dtype=np.uint16), 8, 3).dtype == np.uint8


# sha256 (first 16 hex digits) of `prepare_input` on a smooth test pattern, enlarged and shrunk. The same
# digests came out on x86-64 (AVX-512) and on aarch64 (the userland of benchmarks/check_arm64.py, emulated
# Neoverse N1), OpenCV 5.1.0 on both; plain INTER_LINEAR gave other bytes on each (benchmarks/RESULTS.md,
# "The runtime on aarch64"). If an OpenCV upgrade changes them, run `make check-arm64` before updating them.
DEVICE_DIGESTS = {(28, 64): "456c8616a037065f", (28, 224): "cc66d020ff612405", (512, 224): "46c31bf135404c0e",
                  (300, 224): "97483c22f44c0fc4"}


@pytest.mark.parametrize(("source", "size"), list(DEVICE_DIGESTS))
def test_the_model_input_has_the_same_bytes_on_every_cpu(source, size):
    import hashlib

    rows, columns = np.mgrid[0:512, 0:512]
    pattern = ((np.sin(columns / 37.0) * np.cos(rows / 23.0) + 1) * 127.5).astype(np.uint8)
    image = pattern if source == 512 else cv2.resize(pattern, (source, source), interpolation=cv2.INTER_NEAREST)
    digest = hashlib.sha256(prepare_input(image, size, 1).tobytes()).hexdigest()[:16]
    assert digest == DEVICE_DIGESTS[(source, size)]


def test_pixel_limit_refuses_huge_images(tmp_path):
    path = _write(tmp_path / "big.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(ImageDecodeError, match=r"big\.png: 30x20 pixels is over the limit of 500"):
        decode_image(path, max_pixels=500)
    assert decode_image(path, max_pixels=600).shape == (20, 30)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    good = _write(tmp_path / "good.png", np.zeros((8, 8), np.uint8)).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageDecodeError, match=r"cut\.png: not a readable image \(corrupt, truncated"):
        decode_image(tmp_path / "cut.png")
    with pytest.raises(ImageDecodeError, match=r"gone\.png: no such file"):
        decode_image(tmp_path / "gone.png")


def test_bad_arrays():
    with pytest.raises(ImageDecodeError, match=r"array: image contains NaN or infinite values"):
        decode_image(np.array([[0.0, np.nan]]))
    with pytest.raises(ImageDecodeError, match=r"array: expected a gray \(HxW\) or RGB \(HxWx3\) image, got shape"):
        decode_image(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ImageDecodeError, match=r"array: unsupported pixel type bool"):
        decode_image(np.zeros((2, 2), bool))
    with pytest.raises(ImageDecodeError, match=r"array: empty image"):
        decode_image(np.zeros((0, 3), np.uint8))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_rle.dcm", "image_dfl.dcm",
                                  "SC_rgb_rle_16bit.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "examples_palette.dcm"])
def test_a_dataset_read_whole_decodes_as_its_file_does(name):
    """`medtk serve` reads a spooled instance once and decodes that data set: same pixels and kind."""
    from medtk.runtime.imaging import read_dicom_dataset, read_image

    path = get_testdata_file(name)
    expected = read_image(path)
    decoded = read_dicom_dataset(pydicom.dcmread(path), "instance")
    np.testing.assert_array_equal(decoded.pixels, expected.pixels)
    assert decoded.kind == expected.kind


def test_a_dataset_read_whole_is_checked_as_its_file_is():
    from medtk.runtime.imaging import read_dicom_dataset

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.raises(ImageDecodeError, match=r"^spool/x.dcm: 128x128 pixels is over the limit of 1000$"):
        read_dicom_dataset(dataset, "spool/x.dcm", max_pixels=1000)
    dataset.SamplesPerPixel = 4
    with pytest.raises(ImageDecodeError, match=r"^spool/x.dcm: SamplesPerPixel 4 is not 1"):
        read_dicom_dataset(dataset, "spool/x.dcm")
    del dataset.PixelData
    dataset.SamplesPerPixel = 1
    with pytest.raises(ImageDecodeError, match=r"^spool/x.dcm: DICOM file has no pixel data$"):
        read_dicom_dataset(dataset, "spool/x.dcm")


def _sixteen_bit_files(folder: Path, side: int) -> dict[str, Path]:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from tests.runtime.dicom_builders import image_dataset, write_dicom

    y, x = np.mgrid[0:side, 0:side]
    pixels = ((x + y) * (65535 // (2 * side))).astype(np.uint16)  # a smooth ramp: files of realistic size
    return {
        "png": _write(folder / "ramp.png", pixels),
        "tiff": _write(folder / "ramp.tif", pixels),
        "dicom, window": write_dicom(folder / "window.dcm", image_dataset(pixels, WindowCenter=30000, WindowWidth=40000)),
        "dicom, MONOCHROME1": write_dicom(folder / "mono1.dcm", image_dataset(pixels, photometric="MONOCHROME1")),
        "dicom, deflated": write_dicom(folder / "deflated.dcm",
                                       image_dataset(pixels, syntax=DeflatedExplicitVRLittleEndian)),
    }


def test_sixteen_bit_gray_decodes_within_a_few_bytes_per_pixel(tmp_path):
    """The mapping to 8 bits is a table over the stored values, not float64 copies of the image: the peak of
    Python/numpy allocations stays under 5 bytes per pixel above the encoded file (the float path: 19 to 36)."""
    import tracemalloc

    side = 2000  # 4 megapixels: the fixed 2 MB of a lookup's block is 0.5 bytes per pixel
    for kind, path in _sixteen_bit_files(tmp_path, side).items():
        decode_image(path)  # libraries loaded, codecs initialised
        tracemalloc.start()
        try:
            decoded = decode_image(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert decoded.shape == (side, side)
        assert (peak - path.stat().st_size) / side**2 < 5, f"{kind}: {peak / side**2:.1f} bytes per pixel"
