"""DICOM files and bytes are read within bounds: a deflated data set inflates only as far as its image needs."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from medtk.errors import ImageDecodeError, RuntimeInputError
from medtk.runtime import check_header, load_decoded
from medtk.runtime.dicom_file import NON_PIXEL_BYTES
from medtk.runtime.imaging import read_image
from tests.runtime.dicom_builders import deflate_bomb, dicom_bytes, image_dataset
from tests.runtime.test_lookup import random_image

BOMB_BYTES = 256 << 20  # sixteen times the bound; benchmarks and the CLI battery use 1 GiB


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return deflate_bomb(BOMB_BYTES)


def _traced_peak(action) -> int:
    """The peak of Python and numpy allocations (bytes) while `action` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deflate_bomb_is_refused_within_the_bound(bomb, tmp_path):
    """~0.3 MB that inflates to 256 MiB of zeros in a private element: refused after NON_PIXEL_BYTES, as a
    path, as bytes and from its header alone. pydicom alone inflated all of it in one piece (x2 in RSS)."""
    path = tmp_path / "bomb.dcm"
    path.write_bytes(bomb)
    assert len(bomb) < BOMB_BYTES // 500
    message = rf"the deflated data set inflates to more than {NON_PIXEL_BYTES} bytes"
    for source, name, decode in ((path, str(path), read_image), (bomb, "upload.dcm", read_image),
                                 (path, str(path), check_header)):

        def refused():
            with pytest.raises((ImageDecodeError, RuntimeInputError), match=rf"^{re.escape(name)}: {message}"):
                decode(source, 10**6, name=name) if decode is check_header else decode(source, name=name)

        assert _traced_peak(refused) < NON_PIXEL_BYTES + (8 << 20)  # the bound and a chunk, never 256 MiB


def test_a_deflated_image_decodes_as_its_explicit_copy():
    pixels = random_image((300, 301), np.uint16)
    explicit = dicom_bytes(image_dataset(pixels, WindowCenter=30000, WindowWidth=40000))
    deflated = dicom_bytes(image_dataset(pixels, syntax=DeflatedExplicitVRLittleEndian, WindowCenter=30000,
                                         WindowWidth=40000))
    assert DeflatedExplicitVRLittleEndian.encode() in deflated[:400]
    expected = read_image(explicit)
    decoded = load_decoded(deflated, 10**6, name="deflated.dcm")
    np.testing.assert_array_equal(decoded.pixels, expected.pixels)
    assert decoded.kind == expected.kind
    assert check_header(deflated, 10**6).width == 301


def test_a_deflated_image_is_checked_before_its_pixels_are_inflated():
    """The header (first pass) says 16x16 while the Pixel Data holds 256x256: refused before that is inflated;
    over the pixel limit: refused the same way."""
    lying = image_dataset(np.zeros((16, 16), np.uint8), syntax=DeflatedExplicitVRLittleEndian)
    lying.PixelData = bytes(256 * 256)
    with pytest.raises(ImageDecodeError, match=r"^x.dcm: Pixel Data holds 65536 bytes; .* is 256$"):
        read_image(dicom_bytes(lying), name="x.dcm")
    big = image_dataset(np.zeros((100, 100), np.uint8), syntax=DeflatedExplicitVRLittleEndian)
    with pytest.raises(ImageDecodeError, match=r"^x.dcm: 100x100 pixels is over the limit of 9999$"):
        read_image(dicom_bytes(big), max_pixels=9999, name="x.dcm")


def test_a_truncated_deflated_file_is_one_line():
    data = dicom_bytes(image_dataset(random_image((64, 64), np.uint16), syntax=DeflatedExplicitVRLittleEndian))
    with pytest.raises(ImageDecodeError, match=r"^cut.dcm: ") as refused:
        read_image(data[: len(data) - 500], name="cut.dcm")
    assert "\n" not in str(refused.value)
