"""What a worker does with one image: run the model, build the results, commit them to the spool.

DICOM instances come from the spool (acknowledged, durable); HTTP images come from a request body and
only get JSON back. Decoding is the runtime's own (`load_decoded`; `load_dicom_dataset` for a spooled
instance, which is read whole once for its header and pixels), with the model's intensity mapping, so
the node sees exactly the pixels `medtk predict` would. Nothing here logs patient data: instances are
named by `uid_tag`.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from medtk.errors import RuntimeInputError
from medtk.runtime import Classifier, load_decoded, load_dicom_dataset, overlay
from medtk.serve.identity import ModelIdentity
from medtk.serve.metrics import NodeMetrics
from medtk.serve.outcomes import Done, Outcomes
from medtk.serve.pool import ClassifierPool
from medtk.serve.sc import CaptureTemplate, annotate
from medtk.serve.spool import Spool, SpoolItem
from medtk.serve.sr import ReportTemplate
from medtk.serve.uids import uid_tag
from medtk.serve.writer import ResultWriter

log = logging.getLogger(__name__)

CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif", "application/dicom": ".dcm"}


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
        self.scratch = self.spool.root / "http"
        self.scratch.mkdir(parents=True, exist_ok=True)
        for stale in self.scratch.iterdir():
            stale.unlink(missing_ok=True)
        # highdicom builds each result once per model (and label, character set); per image only the
        # values that change are encoded (template.py)
        self.report = ReportTemplate(self.model, self.software_version)
        self.capture = CaptureTemplate(self.model, self.software_version)
        self.report.prepare()
        self.capture.prepare()
        self.mapping = self.classifiers.primary.metadata.intensity.mapping

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
                prediction = classifier.predict(decoded)  # decoded once, with the model's own mapping
                self.metrics.inference.observe(time.perf_counter() - started)
                picture = annotate(overlay(decoded.pixels, prediction.cam), prediction, self.model,
                                   self.sc_max_side)
                results = dict([self.report.render(source, prediction), self.capture.render(source, picture)])
        except Exception as error:  # any failure of one instance must not stop the node
            self.outcomes.failed(item, error)
            return
        # blocks while the writer is behind: back-pressure on the interpreter
        self.writer.put(Done(item, results, admitted, tag, prediction.label, max(prediction.probabilities.values())))

    # -- HTTP ----------------------------------------------------------------------------------------
    def predict_bytes(self, data: bytes, content_type: str, cam: bool) -> dict[str, Any]:
        """One HTTP image -> the JSON answer (with the CAM overlay as base64 PNG when asked)."""
        with self.classifiers.lease() as classifier:
            return self._predict_bytes(classifier, data, CONTENT_TYPES[content_type], cam)

    def _predict_bytes(self, classifier: Classifier, data: bytes, suffix: str, cam: bool) -> dict[str, Any]:
        started = time.perf_counter()
        handle, name = tempfile.mkstemp(dir=self.scratch, suffix=suffix)
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            decoded = load_decoded(path, self.max_pixels, self.mapping)  # the header is checked before decoding
        finally:
            path.unlink(missing_ok=True)
        prediction = classifier.predict(decoded)
        self.metrics.inference.observe(time.perf_counter() - started)
        answer = prediction.to_dict()
        answer["positive_class"] = self.model.positive_class
        answer["model"] = {"name": self.model.name, "version": self.model.version,
                           "weights_sha256": self.model.weights_sha256}
        if cam:
            ok, png = cv2.imencode(".png", cv2.cvtColor(overlay(decoded.pixels, prediction.cam), cv2.COLOR_RGB2BGR))
            if not ok:
                raise RuntimeInputError("cannot encode the CAM overlay as PNG")
            answer["cam_overlay_png"] = base64.b64encode(png.tobytes()).decode("ascii")
        return answer
