"""The DICOM Structured Report of one prediction: TID 1500 with one measurement group (highdicom).

    Imaging Measurement Report (TID 1500), UNVERIFIED, partial
      observer: device "medtk serve" (UID derived from the model), model name
      Imaging Measurements
        Measurement Group (TID 1501)
          Tracking Identifier / UID
          Algorithm Identification: name, version, parameters (weights sha256, operating point, ...)
          Source: the received image (SOP Class / Instance UID)
          Finding (DCM 121071) = <label> (99MEDTK)
          Probability of <class> (99MEDTK) = p {1}
          Decision threshold (99MEDTK) = t {1}           (models with an operating point)

The series description and the document title say "not for diagnostic use".
"""

from __future__ import annotations

from typing import Any

from medtk.runtime.prediction import Prediction
from medtk.runtime.serve.identity import ModelIdentity
from medtk.runtime.serve.uids import SR_SERIES_NUMBER, device_uid, result_uid, series_uid

SCHEME = "99MEDTK"  # private coding scheme for the model's own labels and quantities
NOTICE = "NOT FOR DIAGNOSTIC USE"
MANUFACTURER = "medtk"


def probability_code(class_name: str):
    from highdicom.sr import CodedConcept

    return CodedConcept("probability", SCHEME, f"Probability of {class_name}")


def threshold_code():
    from highdicom.sr import CodedConcept

    return CodedConcept("threshold", SCHEME, "Decision threshold")


def label_code(label: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(label[:16], SCHEME, label)


def build_sr(source: Any, prediction: Prediction, model: ModelIdentity, software_version: str) -> Any:
    """A Comprehensive 3D SR about `source` (a pydicom header of the received image)."""
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    scored = model.scored_class(prediction.label)
    measurements = [
        hd.sr.Measurement(
            name=probability_code(scored), value=float(prediction.probabilities[scored]), unit=codes.UCUM.NoUnits
        )
    ]
    if prediction.threshold is not None:
        measurements.append(hd.sr.Measurement(name=threshold_code(), value=float(prediction.threshold),
                                              unit=codes.UCUM.NoUnits))
    parameters = [f"weights_sha256={model.weights_sha256}", f"variant={model.variant}",
                  f"decision={'threshold ' + model.rule if model.rule else 'argmax'}", f"medtk={software_version}"]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=result_uid(source.SOPInstanceUID, model.file_sha256, "tracking"), identifier=f"medtk {model.name}"
        ),
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=model.name, version=model.version, parameters=parameters, manufacturer=MANUFACTURER
        ),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=label_code(prediction.label))],
        measurements=measurements,
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(model.file_sha256), name="medtk serve", manufacturer_name=MANUFACTURER,
            model_name=model.name[:64],
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report,
        series_instance_uid=series_uid(source.StudyInstanceUID, model.file_sha256, "sr"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=result_uid(source.SOPInstanceUID, model.file_sha256, "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=False,
        is_verified=False,
    )
    sr.SeriesDescription = f"{NOTICE} - UNVERIFIED AI result, {model.name}"[:64]
    sr.SoftwareVersions = software_version
    return sr
