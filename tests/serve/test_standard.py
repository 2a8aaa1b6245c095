"""serve/standard.py reads highdicom's private copy of the standard: these fail loudly if it moves."""

from __future__ import annotations

from pydicom.uid import ComputedRadiographyImageStorage, CTImageStorage, EncapsulatedPDFStorage

from medtk.serve import standard


def test_the_tables_are_there():
    standard.check()


def test_pixel_data_lookup_knows_image_classes():
    assert standard.iod_has_pixel_data(ComputedRadiographyImageStorage)
    assert standard.iod_has_pixel_data(CTImageStorage)
    assert not standard.iod_has_pixel_data(EncapsulatedPDFStorage)
    assert not standard.iod_has_pixel_data("1.2.3.4.5.6.7")  # unknown class: no equipment item, as highdicom


def test_patient_study_tags_follow_the_iod():
    tags = standard.patient_study_module_tags(ComputedRadiographyImageStorage)
    assert 0x00100010 in tags and 0x0020000D in tags  # PatientName (Patient), StudyInstanceUID (Study)
    assert 0x00280010 not in tags  # Rows belongs to the Image IE
    assert standard.patient_study_module_tags("1.2.3.4.5.6.7") == ()
