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


def test_ds_values_fit_their_vr():
    encoded = t.element(0x0040A30A, "DS", 0.12345678901234567)  # str() of this float is 19 characters
    value = encoded[8:].rstrip(b" ")
    assert len(value) <= 16 and float(value) == pytest.approx(0.12345678901234567, abs=1e-13)
    assert t.element(0x0040A30A, "DS", 1e-20)[8:].strip() == b"1e-20"


def test_values_over_their_vr_length_are_refused():
    with pytest.raises(ValueError, match="IS value is at most 12"):
        t.element(0x00200013, "IS", 10**14)
    with pytest.raises(ValueError, match="CS value is at most 16"):
        t.element(0x00080060, "CS", "A" * 17)


def test_labels_sharing_a_prefix_get_distinct_code_values():
    from medtk.serve.sr import label_code_value

    first, second = "pneumonia_bacterial_left", "pneumonia_bacterial_right"
    codes = {label_code_value(first), label_code_value(second)}
    assert len(codes) == 2 and all(len(code) <= 16 for code in codes)
    assert label_code_value("pneumonia") == "pneumonia"  # short ASCII labels stay readable
    assert len(label_code_value("Lungenentzündung")) <= 16
