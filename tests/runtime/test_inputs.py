"""Raw pixels -> the input tensor's dtype (and quantization); outputs -> float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from medtk.errors import ConfigError, RuntimeInputError
from medtk.runtime.inputs import find_images, from_tensor, load_image, to_tensor
from medtk.runtime.signature import Tensor

PIXELS = np.array([[[0], [1]], [[128], [255]]], np.uint8)


def test_float_input_keeps_raw_values():
    tensor = to_tensor(PIXELS, Tensor(0, (1, 2, 2, 1), np.dtype(np.float32)))
    assert tensor.shape == (1, 2, 2, 1) and tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor[0], PIXELS)


def test_uint8_input_with_unit_scale_is_passed_through():
    tensor = to_tensor(PIXELS, Tensor(0, (1, 2, 2, 1), np.dtype(np.uint8), scale=1.0, zero_point=0))
    assert tensor.dtype == np.uint8
    np.testing.assert_array_equal(tensor[0], PIXELS)


def test_float_pixels_to_uint8_are_rounded_and_clipped():
    tensor = to_tensor(np.array([[[-3.0], [0.6]], [[254.5], [300.0]]]), Tensor(0, (1, 2, 2, 1), np.dtype(np.uint8)))
    np.testing.assert_array_equal(tensor[0, :, :, 0], [[0, 1], [254, 255]])


def test_int8_input_is_quantized():
    tensor = to_tensor(PIXELS, Tensor(0, (1, 2, 2, 1), np.dtype(np.int8), scale=1.0, zero_point=-128))
    np.testing.assert_array_equal(tensor[0, :, :, 0], [[-128, -127], [0, 127]])
    halved = to_tensor(PIXELS, Tensor(0, (1, 2, 2, 1), np.dtype(np.uint8), scale=2.0, zero_point=0))
    np.testing.assert_array_equal(halved[0, :, :, 0], [[0, 0], [64, 128]])


def test_outputs_are_dequantized():
    quantized = Tensor(1, (1, 3), np.dtype(np.uint8), scale=1 / 256, zero_point=0)
    np.testing.assert_allclose(from_tensor(np.array([[0, 128, 255]], np.uint8), quantized), [[0.0, 0.5, 255 / 256]])
    plain = Tensor(1, (1, 3), np.dtype(np.float32))
    assert from_tensor(np.array([[0.2, 0.3, 0.5]], np.float32), plain).dtype == np.float32


def test_load_image_maps_decode_errors(tmp_path):
    with pytest.raises(RuntimeInputError, match="no such file"):
        load_image(tmp_path / "absent.png", 1000)
    with pytest.raises(RuntimeInputError, match="expected an image path, the file's bytes or a numpy array, got int"):
        load_image(3, 1000)


def test_find_images_is_bounded_unless_told_to_find_them_all(tmp_path):
    """`medtk predict DIR` bounds the search; a data source (max_files=None) takes every image."""
    dicom = get_testdata_file("CT_small.dcm")
    for name in ("b/2.png", "a.jpg", ".hidden/x.png", "b/.x.tif", "notes.txt", "c/scan"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Path(dicom).read_bytes() if name == "c/scan" else b"bytes")
    expected = [tmp_path / "a.jpg", tmp_path / "b/2.png", tmp_path / "c/scan"]  # suffixless DICOM by its magic
    assert find_images(tmp_path, max_files=None) == expected
    assert find_images(tmp_path, max_files=3) == expected
    with pytest.raises(ConfigError, match="more than 2 image files"):
        find_images(tmp_path, max_files=2)
    with pytest.raises(ConfigError, match="max_files=0: must be at least 1"):
        find_images(tmp_path, max_files=0)


def test_bytes_decode_as_their_file_does_and_are_named_in_errors(image_files):
    """`medtk serve` decodes an upload in memory: the same pixels and kind as the file, for every format."""
    from pydicom.data import get_testdata_file

    from medtk.runtime.inputs import load_decoded

    paths = [*image_files.values(), Path(get_testdata_file("CT_small.dcm")), Path(get_testdata_file("image_dfl.dcm")),
             Path(get_testdata_file("SC_rgb_rle.dcm"))]
    for path in paths:
        expected = load_decoded(path, 10**6)
        decoded = load_decoded(path.read_bytes(), 10**6, name="upload")
        np.testing.assert_array_equal(decoded.pixels, expected.pixels)
        assert decoded.kind == expected.kind
    with pytest.raises(RuntimeInputError, match=r"^the image: not a readable image \(not a PNG, JPEG, TIFF, BMP or DICOM"):
        load_decoded(b"GIF89a" + bytes(20), 1000)
    cut = image_files["png16"].read_bytes()[:200]
    with pytest.raises(RuntimeInputError, match=r"^upload.png: not a readable image \(corrupt, truncated"):
        load_decoded(cut, 10**6, name="upload.png")
    with pytest.raises(RuntimeInputError, match=r"^upload: 120x90 pixels is over the limit of 100$"):
        load_decoded(image_files["jpeg"].read_bytes(), 100, name="upload")
