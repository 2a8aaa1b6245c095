"""The template's direct encoders write the bytes pydicom's writer would."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DS

from medtk.serve import template as t


@pytest.mark.parametrize(("vr", "value"), [
    ("UI", "1.2.3.45"), ("UI", "1.2.3.4"), ("DA", "20261121"), ("TM", "231501.123456"), ("DT", "20261121231501.5"),
    ("CS", "L"), ("CS", ["LP", "F"]), ("CS", ["ISO_IR 192"]), ("CS", None), ("CS", ""), ("DS", DS(0.1234567, auto_format=True)),
    ("IS", 7), ("US", 512), ("US", [1, 2]), ("FD", 0.87654321), ("FD", [0.5, -2.0]),
    ("LO", "Müller"), ("PN", "Smith^J"), ("SH", None),  # VRs the direct path leaves to pydicom
])
def test_element_bytes_equal_pydicom(vr, value):
    expected = t.encode_element(DataElement(0x00091010, vr, value), ())
    assert t.element(0x00091010, vr, value) == expected


def test_file_meta_equals_pydicom():
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"
    meta.ImplementationClassUID, meta.ImplementationVersionName = "1.2.826.0.1.3680043.10.511.3", "highdicom0"
    for with_version in (True, False):
        if not with_version:
            del meta.ImplementationVersionName
        expected = FileMetaDataset(meta)
        expected.MediaStorageSOPInstanceUID, expected.TransferSyntaxUID = "1.2.3.4.5", ExplicitVRLittleEndian
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_file_meta_info(fp, expected, enforce_standard=True)
        assert t.file_bytes(meta, "1.2.3.4.5", b"") == t.PREAMBLE + fp.getvalue()
        assert pydicom.dcmread(io.BytesIO(t.file_bytes(meta, "1.2.3.4.5", b""))).file_meta == expected
