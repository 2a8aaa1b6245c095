"""What would fail in a worker deterministically from the header is refused before the C-STORE answer."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from tests.serve.serve_helpers import dicom_bytes, radiograph

from medtk.serve.scp import CANNOT_UNDERSTAND, NOT_MATCHING, check_instance


def _received(ds) -> pydicom.Dataset:
    """As the Storage SCP sees it: read back from the encoded stream, file meta attached."""
    read = pydicom.dcmread(io.BytesIO(dicom_bytes(ds)))
    read.file_meta = ds.file_meta
    return read


def _cr() -> pydicom.Dataset:
    return radiograph(np.full((16, 16), 100, np.uint8))


def _short_pixels(ds):
    ds.PixelData = ds.PixelData[:100]


def _wide_bits(ds):
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 64, 64, 63
    ds.PixelData = bytes(16 * 16 * 8)


def _bad_photometric(ds):
    ds.PhotometricInterpretation = "YBR_NONSENSE"


def _long_uid(ds):
    ds.StudyInstanceUID = "1." + "2" * 70


def _name_as_uid(ds):
    ds.SeriesInstanceUID = "Yamada^Taro"


@pytest.mark.parametrize("break_it,expected", [
    # the runtime's own header check (medtk.runtime.check_header) answers these, in its words
    (_short_pixels, (CANNOT_UNDERSTAND, "Pixel Data holds 100 bytes; Rows x Columns x SamplesPerPixel x B")),
    (_wide_bits, (CANNOT_UNDERSTAND, "BitsAllocated 64 / BitsStored 64 are not usable")),
    (_bad_photometric, (CANNOT_UNDERSTAND, "PhotometricInterpretation is missing or not one medtk decodes (M")),
    (_long_uid, (NOT_MATCHING, "invalid StudyInstanceUID")),
    (_name_as_uid, (NOT_MATCHING, "invalid SeriesInstanceUID")),
], ids=lambda value: getattr(value, "__name__", ""))
def test_a_header_a_worker_would_fail_on_is_refused_naming_no_value(break_it, expected):
    ds = _cr()
    break_it(ds)
    assert check_instance(_received(ds), 10**8) == expected


def test_a_header_pydicom_cannot_read_is_a_status_not_an_exception():
    class Hostile(pydicom.Dataset):
        def __contains__(self, key):
            raise ValueError("Yamada^Taro")

    assert check_instance(Hostile(), 10**8) == (CANNOT_UNDERSTAND, "unreadable header")


def test_a_well_formed_instance_passes():
    assert check_instance(_received(_cr()), 10**8) is None
