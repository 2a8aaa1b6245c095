"""What a DICOM header decides, refused in one line that names the element and the file, never a header's text."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from medtk.errors import ImageDecodeError, RuntimeInputError
from medtk.runtime import check_header, load_decoded, load_dicom_dataset
from medtk.runtime.imaging import read_image
from tests.runtime.dicom_builders import NAME_LIKE, dicom_bytes, image_dataset, with_raw, write_dicom
from tests.runtime.test_lookup import random_image


def _refusals(path, max_pixels=10**6):
    """The message for each way of asking: path, bytes, the data set whole and without its pixels."""
    calls = {
        "path": lambda: load_decoded(path, max_pixels),
        "bytes": lambda: load_decoded(path.read_bytes(), max_pixels, name=str(path)),
        "data set": lambda: load_dicom_dataset(pydicom.dcmread(path), str(path), max_pixels),
        "header": lambda: check_header(pydicom.dcmread(path, stop_before_pixels=False), max_pixels, name=str(path)),
        "header of the file": lambda: check_header(path, max_pixels),
    }
    messages = {}
    for how, call in calls.items():
        with pytest.raises(RuntimeInputError) as refused:
            call()
        messages[how] = str(refused.value)
    return messages


def test_pixel_data_longer_or_shorter_than_the_header_says_is_refused(tmp_path):
    """A 16x16 header with 256x256 pixels' worth of bytes was read as 256 frames and a strip classified."""
    longer = image_dataset(np.zeros((16, 16), np.uint8))
    longer.PixelData = bytes(256 * 256)
    shorter = image_dataset(np.zeros((16, 16), np.uint16))
    shorter.PixelData = bytes(100)
    for dataset, held, expected in ((longer, 65536, 256), (shorter, 100, 512)):
        path = write_dicom(tmp_path / "lying.dcm", dataset)
        for how, message in _refusals(path).items():
            assert message == (f"{path}: Pixel Data holds {held} bytes; Rows x Columns x SamplesPerPixel x "
                               f"BitsAllocated/8 x frames is {expected}"), how


def test_one_pad_byte_is_allowed():
    odd = image_dataset(np.arange(9, dtype=np.uint8).reshape(3, 3))  # 9 bytes, written with one pad byte
    data = dicom_bytes(odd)
    assert len(pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).PixelData) == 10
    np.testing.assert_array_equal(load_decoded(data, 100).pixels, np.arange(9).reshape(3, 3))


def test_trailing_padding_short_of_a_frame_is_allowed():
    """pydicom's MR_small_padded.dcm carries 128 bytes past its one frame (a writer padding to a block
    size): it decodes as MR_small.dcm does; a frame's worth more is refused (see the test above)."""
    from pydicom.data import get_testdata_file

    padded = load_decoded(get_testdata_file("MR_small_padded.dcm"), 10**6).pixels
    np.testing.assert_array_equal(padded, load_decoded(get_testdata_file("MR_small.dcm"), 10**6).pixels)


MALFORMED = [  # keyword, VR as written, why it is refused
    ("NumberOfFrames", "IS", "NumberOfFrames is not a valid IS value"),
    ("Rows", "LO", "Rows is not encoded as US"),
    ("Rows", "US", "Rows holds 5 values, not one"),
    ("Columns", "IS", "Columns is not encoded as US"),
    ("SamplesPerPixel", "US", "SamplesPerPixel holds 5 values, not one"),
    ("HighBit", "DA", "HighBit is not encoded as US"),
    ("BitsStored", "CS", "BitsStored is not encoded as US"),
    ("PhotometricInterpretation", "CS", "PhotometricInterpretation is not a valid CS value"),
    ("PixelRepresentation", "PN", "PixelRepresentation is not encoded as US"),
    ("RescaleSlope", "DS", "RescaleSlope is not a valid DS value"),
    ("RescaleIntercept", "DS", "RescaleIntercept is not a valid DS value"),
]


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # pydicom writing the file; reading is checked below
@pytest.mark.parametrize("keyword, vr, problem", MALFORMED)
def test_a_name_in_a_header_value_is_named_never_quoted(keyword, vr, problem, tmp_path, caplog):
    """pydicom quotes the value it cannot convert in its error, its log and a warning; the runtime reads these
    elements from their raw bytes first, so neither its message nor anything pydicom says carries it."""
    dataset = image_dataset(random_image((8, 8), np.uint16), RescaleSlope=1, RescaleIntercept=0)
    dataset = with_raw(dataset, keyword, vr, NAME_LIKE.encode())
    path = write_dicom(tmp_path / "named.dcm", dataset)  # pydicom warns here, writing it
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        messages = _refusals(path)
    for how, message in messages.items():
        assert message == f"{path}: {problem}", how
    assert not [w for w in seen if NAME_LIKE in str(w.message)]
    assert NAME_LIKE not in caplog.text


@pytest.mark.parametrize("keyword", ["WindowCenter", "WindowWidth", "VOILUTFunction"])
def test_a_malformed_window_is_left_out_silently_as_before(keyword, tmp_path, caplog):
    """An unusable window was ignored (pydicom raised on it): the stored range is used, now without pydicom
    logging the value first."""
    pixels = random_image((8, 8), np.uint16)
    plain = read_image(dicom_bytes(image_dataset(pixels))).pixels
    windowed = image_dataset(pixels, WindowCenter=1000, WindowWidth=100)
    data = dicom_bytes(with_raw(windowed, keyword, "DS" if "Window" in keyword else "CS", NAME_LIKE.encode()))
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        decoded = read_image(data)
    np.testing.assert_array_equal(decoded.pixels, plain)
    assert not [w for w in seen if NAME_LIKE in str(w.message)] and NAME_LIKE not in caplog.text


@pytest.mark.parametrize("syntax, problem", [
    ("1.2.3.4", "TransferSyntaxUID is not a transfer syntax medtk decodes"),
    ("1.2.840.10008.1.2.4.100", "pixel data in MPEG2 Main Profile / Main Level cannot be decoded by pydicom"),
])
def test_a_transfer_syntax_not_decodable_here_is_refused_from_the_header(syntax, problem):
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    dataset.file_meta.TransferSyntaxUID = syntax
    with pytest.raises(RuntimeInputError, match=rf"^scan: {problem}$"):
        check_header(dataset, 10**6, name="scan")


@pytest.mark.parametrize("photometric", ["ARGB", "HSV", "CMYK", "YBR_PARTIAL_422"])
def test_a_photometric_interpretation_not_decoded_here_is_refused(photometric):
    dataset = image_dataset(np.zeros((4, 4), np.uint8), photometric=photometric)
    with pytest.raises(RuntimeInputError, match=r"^x: PhotometricInterpretation is missing or not one medtk decodes"):
        check_header(dataset, 100, name="x")
    colour = image_dataset(np.zeros((4, 4, 3), np.uint8), photometric="MONOCHROME2")
    with pytest.raises(RuntimeInputError, match=r"^x: MONOCHROME2 with SamplesPerPixel 3, BitsAllocated 8$"):
        check_header(colour, 100, name="x")


def test_palette_colour_is_decoded_through_its_palette():
    """PALETTE COLOR indices were read as gray: now the palette gives RGB, and the kind says what it was."""
    path = get_testdata_file("examples_palette.dcm")
    dataset = pydicom.dcmread(path)
    decoded = read_image(path)
    colours = apply_color_lut(dataset.pixel_array, dataset)  # 16-bit entries here
    assert colours.dtype == np.uint16 and colours.shape == (dataset.Rows, dataset.Columns, 3)
    np.testing.assert_array_equal(decoded.pixels, ((colours.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8))
    assert decoded.kind.photometric == "PALETTE COLOR" and decoded.kind.bit_depth == 8


def test_sixteen_bit_palette_entries_map_over_their_full_range():
    indices = np.arange(16, dtype=np.uint8).reshape(4, 4)
    red, green, blue = (np.linspace(0, 65535, 16).astype(np.uint16) * 0, np.linspace(0, 65535, 16).astype(np.uint16),
                        np.full(16, 65535, np.uint16))
    elements = {}
    for colour, entries in zip(("Red", "Green", "Blue"), (red, green, blue)):
        elements[f"{colour}PaletteColorLookupTableDescriptor"] = [16, 0, 16]
        elements[f"{colour}PaletteColorLookupTableData"] = entries.tobytes()
    decoded = read_image(dicom_bytes(image_dataset(indices, photometric="PALETTE COLOR", **elements)))
    expected = np.dstack([red, green, blue]).reshape(4, 4, 3)
    np.testing.assert_array_equal(decoded.pixels, ((expected.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8))


def test_palette_colour_without_its_palette_is_refused():
    dataset = image_dataset(np.zeros((4, 4), np.uint8), photometric="PALETTE COLOR")
    with pytest.raises(ImageDecodeError, match=r"^p.dcm: PALETTE COLOR without a three-value RedPalette"):
        read_image(dicom_bytes(dataset), name="p.dcm")
