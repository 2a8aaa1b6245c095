"""What a worker does with one image: run the model, build the results, commit them to the spool.

DICOM instances come from the spool (acknowledged, durable); HTTP images come from a request body and
only get JSON back. Decoding is the runtime's own (`load_decoded`; `load_dicom_dataset` for a spooled
instance, which is read whole once for its header and pixels), with the model's intensity mapping, so
the node sees exactly the pixels `medtk predict` would. What the results say about an image (a finding,
or none and why, and every warning) is decided once, by assessment.py, for DICOM and HTTP alike.
Nothing here logs patient data: instances are named by `uid_tag`, and an HTTP upload that cannot be
read is "the uploaded image" (decoded in memory, never written to disk) with no header value quoted.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from medtk.errors import RuntimeInputError
from medtk.runtime import Classifier, Decoded, Prediction, load_decoded, load_dicom_dataset, overlay
from medtk.serve.assessment import Assessment, assess, modality_withheld, withheld
from medtk.serve.caption import caption_lines, compose
from medtk.serve.identity import ModelIdentity
from medtk.serve.metrics import NodeMetrics
from medtk.serve.outcomes import Done, Outcomes
from medtk.serve.pool import ClassifierPool
from medtk.serve.sc import CaptureTemplate
from medtk.serve.spool import Spool, SpoolItem
from medtk.serve.sr import NOTICE, ReportTemplate
from medtk.serve.uids import uid_tag
from medtk.serve.writer import ResultWriter

log = logging.getLogger(__name__)

CONTENT_TYPES = ("image/png", "image/jpeg", "image/tiff", "application/dicom")  # what /v1/predict accepts


@dataclass
class Processor:
    classifiers: ClassifierPool  # one interpreter per worker
    model: ModelIdentity
    spool: Spool
    metrics: NodeMetrics
    software_version: str
    max_pixels: int
    sc_max_side: int
    writer: ResultWriter  # commits results off the workers' path (writer.py)
    outcomes: Outcomes

    def __post_init__(self) -> None:
        # highdicom builds each result once per model (and label, character set); per image only the
        # values that change are encoded (template.py)
        self.report = ReportTemplate(self.model, self.software_version)
        self.capture = CaptureTemplate(self.model, self.software_version)
        self.report.prepare()
        self.capture.prepare()
        self.intensity = self.classifiers.primary.metadata.intensity  # the mapping and what training saw
        self.mapping = self.intensity.mapping

    def judge(self, classifier: Classifier, decoded: Decoded) -> tuple[Assessment, np.ndarray, Prediction | None]:
        """(what the results say, the picture the SC shows, the prediction): an image whose modality the
        model was not trained on is not run at all and its picture is the bare image (assessment.py)."""
        modality, trained = decoded.kind.modality, self.intensity.modalities
        reason = modality_withheld(modality, trained)
        if reason is not None:
            return withheld(reason, self.intensity.warnings(decoded.kind)), decoded.pixels, None
        prediction = classifier.predict(decoded)  # decoded once, with the model's own mapping
        return assess(prediction, self.model, modality, trained), overlay(decoded.pixels, prediction.cam), prediction

    # -- DICOM ---------------------------------------------------------------------------------------
    def process_instance(self, item: SpoolItem, admitted: float) -> None:
        """Predict on one spooled instance and hand its SR and SC to the writer; a failure parks it in failed/.

        The writer commits them (writer.py); the instance stays in queue/ until then.
        """
        import pydicom

        if not item.path.exists():  # a resend replaced it and an earlier job already handled it
            return
        try:
            with self.classifiers.lease() as classifier:
                started = time.perf_counter()
                source = pydicom.dcmread(item.path)  # read once: its header for the results, its pixels for the model
                tag = uid_tag(str(source.SOPInstanceUID))
                decoded = load_dicom_dataset(source, str(item.path), self.max_pixels, self.mapping)
                assessment, picture, _ = self.judge(classifier, decoded)
                self.metrics.inference.observe(time.perf_counter() - started)
                picture = compose(picture, caption_lines(assessment, NOTICE), self.sc_max_side)
                results = dict([self.report.render(source, assessment), self.capture.render(source, picture)])
        except Exception as error:  # any failure of one instance must not stop the node
            self.outcomes.failed(item, error)
            return
        # blocks while the writer is behind: back-pressure on the interpreter
        self.writer.put(Done(item, results, admitted, tag, assessment.label, assessment.probability))

    # -- HTTP ----------------------------------------------------------------------------------------
    def predict_bytes(self, data: bytes, content_type: str, cam: bool) -> dict[str, Any]:
        """One HTTP image -> the JSON answer (with the CAM overlay as base64 PNG when asked)."""
        with self.classifiers.lease() as classifier:
            return self._predict_bytes(classifier, data, cam)

    def _predict_bytes(self, classifier: Classifier, data: bytes, cam: bool) -> dict[str, Any]:
        started = time.perf_counter()
        decoded = self._decode_upload(data)
        assessment, picture, prediction = self.judge(classifier, decoded)
        self.metrics.inference.observe(time.perf_counter() - started)
        answer = prediction.to_dict() if prediction is not None else dict.fromkeys(WITHHELD_KEYS)
        answer.update(warnings=list(assessment.warnings), withheld=assessment.withheld,
                      positive_class=self.model.positive_class,
                      model={"name": self.model.name, "version": self.model.version,
                             "weights_sha256": self.model.weights_sha256})
        if cam and prediction is not None:
            ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if not ok:
                raise RuntimeInputError("cannot encode the CAM overlay as PNG")
            answer["cam_overlay_png"] = base64.b64encode(png.tobytes()).decode("ascii")
        return answer

    def _decode_upload(self, data: bytes) -> Decoded:
        """The upload decoded in memory; any failure is a `RuntimeInputError` (HTTP 400) about "the uploaded
        image", never a header value an exception may quote. The Content-Type only selected the route: the
        runtime reads the format from the bytes themselves."""
        try:
            return load_decoded(data, self.max_pixels, self.mapping, name=UPLOAD)  # header checked first
        except RuntimeInputError:
            raise
        except Exception as error:  # a library's message may quote the header: only its type is kept
            raise RuntimeInputError(f"{UPLOAD} is not readable ({type(error).__name__})") from None


UPLOAD = "the uploaded image"
# The keys of `Prediction.to_dict` an answer has as null when the finding is withheld.
WITHHELD_KEYS = ("label", "class_index", "probabilities", "threshold", "positive", "cam_shape")
