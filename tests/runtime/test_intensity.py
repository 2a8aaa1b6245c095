"""The intensity mapping is the model's: deterministic, the same for the same pixels in any dtype."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medtk.errors import ConfigError, ImageDecodeError
from medtk.runtime.backend import default_threads, resolve_threads
from medtk.runtime.imaging import probe, read_image
from medtk.runtime.intensity import MINMAX, ImageKind, Intensity, describe_intensity, to_uint8


def test_the_same_pixels_map_to_the_same_bytes_in_any_dtype():
    eight = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for copy in (eight.astype(np.uint16) * 257, eight.astype(np.float32), eight / 255.0, eight.astype(np.int64)):
        assert np.array_equal(to_uint8(copy), eight), copy.dtype
    assert np.array_equal(to_uint8(np.array([0, 4095], np.uint16), bit_depth=12), [0, 255])  # DICOM BitsStored


def test_dim_images_are_not_stretched():
    dim = np.full((4, 4), 1000, np.uint16)  # per-image min-max would have made this mid-gray or black
    assert (to_uint8(dim) == 4).all()
    assert (to_uint8(dim, MINMAX) == 0).all()


@pytest.mark.parametrize("pixels, match", [
    (np.array([[0.0, 256.0]]), r"float pixels in \[0, 256\]"),
    (np.array([[-0.5, 1.0]]), r"float pixels in \[-0.5, 1\]"),
    (np.array([[0, 300]], np.int32), r"int32 pixels in \[0, 300\]: their bit depth is ambiguous"),
    (np.array([[np.inf]]), "NaN or infinite"),
])
def test_ambiguous_pixels_are_refused(pixels, match):
    with pytest.raises(ImageDecodeError, match=match):
        to_uint8(pixels)


def test_headers_give_size_and_kind_without_decoding(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((30, 40), np.uint16))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((5, 7, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "c.tif"), np.zeros((9, 11), np.uint16))
    cv2.imwrite(str(tmp_path / "d.bmp"), np.zeros((3, 6, 3), np.uint8))
    seen = {name: probe(tmp_path / name) for name in ("a.png", "b.jpg", "c.tif", "d.bmp")}
    assert [(h.width, h.height, h.kind.bit_depth, h.kind.photometric) for h in seen.values()] == [
        (40, 30, 16, "MONOCHROME2"), (7, 5, 8, "RGB"), (11, 9, 16, "MONOCHROME2"), (6, 3, 8, "RGB")]
    assert read_image(tmp_path / "a.png").kind == seen["a.png"].kind
    (tmp_path / "x.gif").write_bytes(b"GIF89a" + b"\0" * 20)
    with pytest.raises(ImageDecodeError, match="not a PNG, JPEG, TIFF, BMP or DICOM file"):
        probe(tmp_path / "x.gif")


def test_describe_intensity_and_the_warnings_it_drives(tmp_path):
    from pydicom.data import get_testdata_file

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((3, 3), np.uint8))
    seen = describe_intensity([tmp_path / "a.png", get_testdata_file("CT_small.dcm"), np.zeros((2, 2, 3), np.uint8)])
    assert seen == Intensity(bit_depths=(8, 16), photometric=("MONOCHROME2", "RGB"), modalities=("CT",))
    assert Intensity.from_dict(seen.to_dict()) == seen
    assert seen.warnings(ImageKind(8, "MONOCHROME2", "CT")) == ()
    assert seen.warnings(ImageKind(12, "MONOCHROME1", "MR")) == (
        "input is 12-bit; the model was trained on 8/16-bit images",
        "input is MONOCHROME1; the model was trained on MONOCHROME2/RGB images",
        "input modality is MR; the model was trained on CT",
    )
    assert Intensity().warnings(ImageKind(16, "RGB", "MR")) == ()  # nothing recorded: nothing to compare
    with pytest.raises(ValueError, match="intensity mapping 'gamma' is not one"):
        Intensity.from_dict({"mapping": "gamma"})


def test_threads_are_bounded_by_the_usable_cpus():
    cpus = default_threads()
    assert resolve_threads(None) == cpus and resolve_threads(1) == 1
    for bad in (0, -3, cpus + 1, 10**6, 2.5, True):
        with pytest.raises(ConfigError, match=r"num_threads="):
            resolve_threads(bad)
