"""What a worker does with one image: run the model, build the results, commit them to the spool.

DICOM instances come from the spool (acknowledged, durable); HTTP images come from a request body and
only get JSON back. Decoding is the runtime's own (`load_decoded`; `load_dicom_dataset` for a spooled
instance, which is read whole once for its header and pixels), with the model's intensity mapping, so
the node sees exactly the pixels `medtk predict` would. Nothing here logs patient data: instances are
named by `uid_tag`.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2

from medtk.errors import RuntimeInputError
from medtk.runtime import load_decoded, load_dicom_dataset, overlay
from medtk.serve.identity import ModelIdentity
from medtk.serve.metrics import Metrics
from medtk.serve.pool import ClassifierPool
from medtk.serve.sc import CaptureTemplate, annotate
from medtk.serve.spool import Spool, SpoolItem
from medtk.serve.sr import ReportTemplate
from medtk.serve.uids import uid_tag

log = logging.getLogger(__name__)

CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif", "application/dicom": ".dcm"}


@dataclass
class Processor:
    classifiers: ClassifierPool  # one interpreter per worker
    model: ModelIdentity
    spool: Spool
    metrics: Metrics
    software_version: str
    max_pixels: int
    sc_max_side: int
    on_results: Callable[[], None] = lambda: None  # wakes the forwarders
    writer: Any = None  # a ResultWriter (writer.py) that commits results off the workers' path, or None

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

        The writer commits them (writer.py); the instance stays in queue/ until then. With no writer
        (`writer` None) the worker commits them itself.
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
            self.failed(item, error)
            return
        done = Done(item, results, admitted, tag, prediction.label, max(prediction.probabilities.values()))
        if self.writer is not None:
            self.writer.put(done)  # blocks while the writer is behind: back-pressure on the interpreter
            return
        try:
            self.spool.commit(item, results)
        except Exception as error:
            self.failed(item, error)
            return
        self.committed([done])

    def committed(self, batch: list["Done"]) -> None:
        """Results of `batch` are durable in the outbox and pending folders."""
        for done in batch:
            self.metrics.images.labels("dicom", "ok").inc()
            self.metrics.latency.labels("dicom").observe(time.time() - done.admitted)
            log.info("instance %s: %s (p=%.3f)", done.tag, done.label, done.probability)
        self.on_results()

    def failed(self, item: SpoolItem, error: Exception) -> None:
        log.warning("instance %s failed: %s", item.key[:12], _loggable(error))
        self.metrics.errors.labels("process").inc()
        self.metrics.images.labels("dicom", "error").inc()
        self.spool.fail(item, f"{type(error).__name__}: {error}")  # beside the instance, not in the log

    # -- HTTP ----------------------------------------------------------------------------------------
    def predict_bytes(self, data: bytes, content_type: str, cam: bool) -> dict[str, Any]:
        """One HTTP image -> the JSON answer (with the CAM overlay as base64 PNG when asked)."""
        suffix = CONTENT_TYPES[content_type]
        check_dimensions(data, suffix, self.max_pixels)
        with self.classifiers.lease() as classifier:
            return self._predict_bytes(classifier, data, suffix, cam)

    def _predict_bytes(self, classifier: Any, data: bytes, suffix: str, cam: bool) -> dict[str, Any]:
        started = time.perf_counter()
        handle, name = tempfile.mkstemp(dir=self.scratch, suffix=suffix)
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            decoded = load_decoded(path, self.max_pixels, self.mapping)
        finally:
            path.unlink(missing_ok=True)
        prediction = classifier.predict(decoded)
        self.metrics.inference.observe(time.perf_counter() - started)
        answer = {
            "label": prediction.label,
            "class_index": prediction.class_index,
            "probabilities": {k: round(v, 6) for k, v in prediction.probabilities.items()},
            "threshold": prediction.threshold,
            "positive": prediction.positive,
            "positive_class": self.model.positive_class,
            "warnings": list(prediction.warnings),
            "model": {"name": self.model.name, "version": self.model.version,
                      "weights_sha256": self.model.weights_sha256},
        }
        if cam:
            ok, png = cv2.imencode(".png", cv2.cvtColor(overlay(decoded.pixels, prediction.cam), cv2.COLOR_RGB2BGR))
            if not ok:
                raise RuntimeInputError("cannot encode the CAM overlay as PNG")
            answer["cam_overlay_png"] = base64.b64encode(png.tobytes()).decode("ascii")
        return answer


@dataclass(frozen=True)
class Done:
    """One instance's results, built and not yet committed."""

    item: SpoolItem
    results: dict[str, bytes]  # SOP Instance UID -> Part 10 file
    admitted: float
    tag: str  # uid_tag of the source, for logs
    label: str
    probability: float


def check_dimensions(data: bytes, suffix: str, max_pixels: int) -> None:
    """Refuse an image whose header declares more pixels than allowed, before decoding it."""
    if suffix == ".dcm":
        import pydicom

        try:
            with warnings.catch_warnings():  # pydicom warns about each oddity of a malformed upload
                warnings.simplefilter("ignore")
                header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        except Exception as error:
            raise RuntimeInputError(f"not a readable DICOM file ({type(error).__name__})") from None
        rows, columns = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
        frames = int(header.get("NumberOfFrames", 1) or 1)
    else:
        from PIL import Image, UnidentifiedImageError

        Image.MAX_IMAGE_PIXELS = None  # our own limit below applies; PIL's would only warn
        try:
            with Image.open(io.BytesIO(data)) as image:
                columns, rows = image.size
                frames = getattr(image, "n_frames", 1)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise RuntimeInputError(f"not a readable image ({type(error).__name__})") from None
    if rows * columns * max(frames, 1) > max_pixels:
        raise RuntimeInputError(f"{columns}x{rows}x{frames} pixels is over the limit of {max_pixels}")


def _loggable(error: Exception) -> str:
    """A reason safe for logs: medtk's own messages name no patient data; others only by their type."""
    if isinstance(error, RuntimeInputError):
        return str(error).splitlines()[0][:300] if str(error) else "RuntimeInputError"
    return f"{type(error).__name__} (details in the spool's failed/ folder)"

