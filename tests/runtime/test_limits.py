"""One 2-D image within the pixel limit, decided once from the header for every source and every caller."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtk.errors import ConfigError, RuntimeInputError
from medtk.runtime import Classifier, ImageHeader, check_header, load_decoded


def _sources(path):
    """The same image as a path, as bytes, and (DICOM) as data sets with and without pixel data."""
    sources = [(path, str(path)), (path.read_bytes(), "upload")]
    if path.suffix == ".dcm":
        sources += [(pydicom.dcmread(path), "received"), (pydicom.dcmread(path, stop_before_pixels=True), "received")]
    return sources


def _multi_frame_files(tmp_path):
    dicom = tmp_path / "three.dcm"
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.NumberOfFrames = 3
    dataset.PixelData = dataset.PixelData * 3
    dataset.save_as(dicom)
    tiff = tmp_path / "three.tif"
    assert cv2.imwritemulti(str(tiff), [np.full((8, 8), v, np.uint16) for v in (0, 1000, 2000)])
    png = tmp_path / "two.png"
    animation = cv2.Animation()
    animation.frames, animation.durations = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 9, np.uint8)], [50, 50]
    assert cv2.imwriteanimation(str(png), animation)
    return {dicom: 3, tiff: 3, png: 2}


def test_an_image_of_several_frames_is_refused_from_every_source(tmp_path):
    """OpenCV reads the first page or frame of a TIFF or animated PNG, and pydicom every frame: the runtime
    classifies one 2-D image, so each is refused before decoding, the same way for paths, bytes and data sets."""
    for path, frames in _multi_frame_files(tmp_path).items():
        for source, name in _sources(path):
            message = rf"^{name}: {frames} frames; medtk classifies one 2-D image"
            with pytest.raises(RuntimeInputError, match=message):
                check_header(source, 10**6, name=None if source is path else name)
            if not isinstance(source, pydicom.Dataset):
                with pytest.raises(RuntimeInputError, match=message):
                    load_decoded(source, 10**6, name=None if source is path else name)


def test_check_header_says_what_it_found_for_an_image_the_runtime_takes(tmp_path):
    png = tmp_path / "one.png"
    assert cv2.imwrite(str(png), np.zeros((5, 7), np.uint16))
    assert check_header(png, 35) == ImageHeader("png", 7, 5, 1, check_header(png.read_bytes(), 35).kind)
    assert check_header(png, 35).kind.bit_depth == 16
    dicom = get_testdata_file("CT_small.dcm")
    for source in (dicom, pydicom.dcmread(dicom), pydicom.dcmread(dicom, stop_before_pixels=True)):
        header = check_header(source, 128 * 128)
        assert (header.format, header.width, header.height, header.frames, header.kind.modality) == ("dicom", 128, 128, 1, "CT")
    with pytest.raises(RuntimeInputError, match=r"^the data set: 128x128 pixels is over the limit of 1000$"):
        check_header(pydicom.dcmread(dicom), 1000)
    with pytest.raises(RuntimeInputError, match=r"^the image: 7x5 pixels is over the limit of 34$"):
        check_header(png.read_bytes(), 34)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_a_pixel_limit_of_zero_is_an_error_not_the_default(bad, tmp_path, float_model):
    png = tmp_path / "one.png"
    assert cv2.imwrite(str(png), np.zeros((5, 7), np.uint8))
    for call in (lambda: load_decoded(png, bad), lambda: check_header(png, bad),
                 lambda: Classifier(float_model, max_pixels=bad)):
        with pytest.raises(ConfigError, match=rf"^max_pixels={bad!r} must be a whole number of at least 1$"):
            call()
