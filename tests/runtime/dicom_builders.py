"""Real DICOM files built in tests: pydicom data sets written with `dcmwrite`, and byte-level crafted ones
(a deflate bomb, values pydicom would not write) made of pydicom's own encoders."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

NAME_LIKE = "DOE^JANE^Q"  # what a malformed header carries where a number belongs; must never be quoted


def image_dataset(pixels: np.ndarray, photometric: str | None = None, bits_stored: int | None = None,
                  signed: bool = False, syntax: str = ExplicitVRLittleEndian, **elements) -> Dataset:
    """A single-frame image data set holding `pixels` (HxW gray or HxWx3 colour), as a modality writes one."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    dataset.SOPInstanceUID = generate_uid()
    dataset.PatientName = NAME_LIKE
    dataset.Modality = "OT"
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    dataset.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    dataset.PhotometricInterpretation = photometric or ("RGB" if pixels.ndim == 3 else "MONOCHROME2")
    if pixels.ndim == 3:
        dataset.PlanarConfiguration = 0
    dataset.BitsAllocated = pixels.dtype.itemsize * 8
    dataset.BitsStored = bits_stored or dataset.BitsAllocated
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = 1 if signed else 0
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = pixels.tobytes()
    return dataset


def dicom_bytes(dataset: Dataset) -> bytes:
    """The data set as a DICOM file's bytes (in its file meta's transfer syntax)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def write_dicom(path: Path, dataset: Dataset) -> Path:
    path.write_bytes(dicom_bytes(dataset))
    return path


def with_raw(dataset: Dataset, keyword: str, vr: str, value: bytes) -> Dataset:
    """`dataset` with `keyword` holding `value` as raw bytes: how a broken or hostile writer stores it."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    dataset[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    return dataset


def deflate_bomb(inflated: int, chunk: int = 1 << 22) -> bytes:
    """A Deflated Explicit VR Little Endian file of a 16x16 image whose data set inflates to more than
    `inflated` bytes: zeros in a private OB element before the Pixel Data, compressed as a stream."""
    header = image_dataset(np.zeros((16, 16), np.uint8))
    pixel_data = header.PixelData
    del header.PixelData
    header.add_new(0x00290010, "LO", "MEDTK TEST")  # private creator of the block below
    parts = DicomBytesIO()
    parts.is_little_endian, parts.is_implicit_VR = True, False
    write_dataset(parts, header)
    body = [parts.getvalue(), _element(0x0029, 0x1010, b"OB", inflated)]
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [deflate.compress(part) for part in body]
    zeros = bytes(chunk)
    for _ in range(inflated // chunk):
        out.append(deflate.compress(zeros))
    out.append(deflate.compress(bytes(inflated % chunk)))
    out.append(deflate.compress(_element(0x7FE0, 0x0010, b"OB", len(pixel_data)) + pixel_data))
    out.append(deflate.flush())
    meta = DicomBytesIO()
    meta.write(b"\0" * 128 + b"DICM")
    header.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header.file_meta.MediaStorageSOPClassUID = header.SOPClassUID
    header.file_meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    write_file_meta_info(meta, header.file_meta, enforce_standard=True)
    return meta.getvalue() + b"".join(out)


def _element(group: int, element: int, vr: bytes, length: int) -> bytes:
    """An explicit VR little endian header for an OB/OW element of `length` bytes."""
    return group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr + b"\0\0" + length.to_bytes(4, "little")
