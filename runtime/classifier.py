"""`Classifier`: a medtk `.tflite` file -> label, probabilities and a CAM per image, without TensorFlow.

An `.onnx` medtk model (told by its content, container.py) runs the same way through ONNX Runtime
(onnx_engine.py, the `medtk[onnx]` extra): same metadata, seal, signature, decision and CAM.

Loading checks the model before it is trusted, and before its bytes reach the interpreter: a TFLite
flatbuffer whose seal (integrity.py: sha256 of the whole file except the seal) matches, so a model
whose weights, quantization parameters, graph or metadata changed after export is refused; with
`trusted_keys`, a valid ed25519 signature by one of them (signing.py). Then outputs `probs` and `cam`
by signature name and metadata consistent with the tensors. A model exported before the seal (schema
2) is checked by its weights-only checksum and loads with a warning; a model exported by other tools
(no medtk metadata) still runs, with a warning and defaults read from its input tensor. Neither loads
when `trusted_keys` are given. A variant whose metadata says it failed compress's quality gate loads
with a warning naming the gates (`metadata.quality_gate`); `medtk serve` refuses it unless told otherwise.

Each prediction decodes with the model's own intensity mapping (intensity.py) and carries a warning
in `Prediction.warnings` when the input's kind (bit depth, photometric, modality) differs from what
training saw.

Per call the hot path is `set_tensor` / `invoke` / `get_tensor` on indices resolved once, behind one
lock: a TFLite interpreter is not thread-safe. For latency one interpreter with every core is fastest;
for throughput several single-threaded ones side by side are (`replica`; benchmarks/RESULTS.md,
"medtk serve").
"""

from __future__ import annotations

import copy
import hashlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from medtk.errors import ConfigError, ModelError, RuntimeInputError
from medtk.runtime import integrity
from medtk.runtime.backend import Backend, load_backend, make_interpreter, resolve_threads
from medtk.runtime.container import ONNX, content_sha256, model_format
from medtk.runtime.cam import class_map
from medtk.runtime.flatbuffer import weights_sha256
from medtk.runtime.imaging import LEGACY_INTERPOLATION_RULE, RESIZE_RULES, prepare_input
from medtk.runtime.inputs import from_tensor, load_decoded, to_tensor
from medtk.runtime.metadata import METADATA_NAME, ModelInput, ModelMetadata, read_metadata
from medtk.runtime.limits import DEFAULT_MAX_PIXELS, check_max_pixels
from medtk.runtime.pixels import Decoded
from medtk.runtime.prediction import Prediction
from medtk.runtime.signature import ModelIO, resolve_io

ImageSource = str | Path | bytes | np.ndarray | Decoded


@dataclass(frozen=True)
class Verification:
    """How far the loaded model was verified: "signed" (seal and signature), "sealed" (whole-file digest),
    "weights-only" (a schema-2 file: weights checksum only) or "none" (no medtk metadata or checksum)."""

    status: str
    sha256: str | None = None  # the seal's digest
    key_id: str | None = None  # the trusted key that signed it



class FailedGateWarning(UserWarning):
    """Loading a variant whose sealed metadata says compress's quality gate failed it (filterable by category)."""


class Classifier:
    """Load a medtk `.tflite` model once; predict on paths or arrays (see docs/ARCHITECTURE.md, runtime API).

    `model_int8.tflite` is a variant `medtk compress` exported, `chest.png` any gray or RGB image
    (tests/runtime/test_examples.py runs this on a small real model)::

        >>> from medtk.runtime import Classifier
        >>> clf = Classifier("model_int8.tflite", num_threads=1)
        >>> clf.labels
        ('normal', 'pneumonia')
        >>> prediction = clf.predict("chest.png")
        >>> prediction.label in clf.labels, prediction.cam.shape
        (True, (90, 120))

    Raises (each a `medtk.errors.MedtkError`: one line naming the file or the argument):
        ModelError: `model_path` is a directory or missing; the file is not a TFLite or ONNX model; its seal,
            or with `trusted_keys` its signature, does not verify (the file changed after export, is
            unsigned or signed by another key); its medtk metadata is malformed or disagrees with its
            tensors; it lacks the `probs`/`cam` outputs; the interpreter cannot run it.
        ConfigError: `num_threads` is not 1 up to the CPUs this process may use; `delegate` is not
            "auto", "cpu", "gpu" or a delegate library file; `max_pixels` is not a whole number of
            at least 1; `trusted_keys` is empty or holds an unreadable or non-ed25519 public key.
        MissingExtraError: no TFLite interpreter (`ai-edge-litert`) is installed; an `.onnx` model without
            ONNX Runtime (`medtk[onnx]`).

    Loads with a `UserWarning` saying so: a model without medtk metadata or one sealed the older way
    (schema 1-2: only its weights are checked), both refused when `trusted_keys` are given, and one
    without `cam_geometry`. A delegate asked for by name that cannot run falls back to the CPU with a
    `RuntimeWarning` (`placement.fallback` says why). A variant that failed compress's quality gate
    (`metadata.failed_gate`) loads with a `FailedGateWarning` (a `UserWarning`) naming the gates it failed.
    """

    def __init__(
        self,
        model_path: str | Path,
        num_threads: int | None = None,
        delegate: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        trusted_keys: Iterable | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        name = str(self.model_path)
        if self.model_path.is_dir():
            raise ModelError(f"{name}: is a directory, not a model file")
        if not self.model_path.is_file():
            raise ModelError(f"{name}: no such model file")
        check_max_pixels(max_pixels)
        threads = resolve_threads(num_threads)
        model = self.model_path.read_bytes()
        self.format = model_format(model, name)
        self.max_pixels = max_pixels
        metadata, self.verification = verify_model(model, name, trusted_keys)  # before the interpreter sees the bytes
        self.backend, self._make = engine_for(self.format)
        self._model, self._delegate = model, delegate
        self._interpreter, self.placement = self._make(self.backend, model, name, threads, delegate)
        self._io: ModelIO = resolve_io(self._interpreter, name)
        self.metadata: ModelMetadata = _consistent(metadata, name, self._io)
        _warn_failed_gate(self.metadata, name)
        self.labels: tuple[str, ...] = self.metadata.labels
        self._lock = threading.Lock()
        self._file_sha256: str | None = None

    def replica(self, num_threads: int | None = None) -> "Classifier":
        """The same model on an interpreter of its own, so two images can run at once (one per thread).

        Built from the bytes this classifier already verified, not re-read from disk: replicas cannot
        differ from it, and they share its metadata (and memory for the model file).
        """
        twin = copy.copy(self)
        threads = self.num_threads if num_threads is None else resolve_threads(num_threads)
        twin._interpreter, twin.placement = self._make(self.backend, self._model, str(self.model_path),
                                                       threads, self._delegate)
        twin._io = resolve_io(twin._interpreter, str(self.model_path))
        twin._lock = threading.Lock()
        return twin

    @property
    def file_sha256(self) -> str:
        """sha256 of the model file's bytes this classifier verified and runs (not a second read of the file)."""
        if self._file_sha256 is None:
            self._file_sha256 = hashlib.sha256(self._model).hexdigest()
        return self._file_sha256

    @property
    def weights_sha256(self) -> str:
        """The weights' checksum: the one recorded at export, else computed from the verified bytes."""
        return self.metadata.weights_sha256 or content_sha256(self._model, METADATA_NAME)

    @property
    def delegate(self) -> str:
        """What actually runs the model ("cpu" = XNNPACK, "gpu", ...); see `placement.fallback`."""
        return self.placement.delegate

    @property
    def num_threads(self) -> int:
        return self.placement.num_threads

    @property
    def input_size(self) -> int:
        return self._io.input_size

    @property
    def channels(self) -> int:
        return self._io.channels

    @property
    def input_dtype(self) -> np.dtype:
        return self._io.pixels.dtype

    def __repr__(self) -> str:
        return (
            f"Classifier({str(self.model_path)!r}, backend={str(self.backend)!r}, delegate={self.delegate!r}, "
            f"threads={self.num_threads}, labels={list(self.labels)})"
        )

    def predict(self, image: ImageSource) -> Prediction:
        """Decode with the model's intensity mapping, preprocess exactly as in training, run, and map the CAM
        back onto the image; `warnings` says how the input differs from the training data, if it does.

        `image`: a path (PNG, JPEG, TIFF, BMP or DICOM, 8 or 16 bit), the file's bytes, a numpy array
        (HxW gray or HxWx3 RGB: uint8, uint16, or floats in [0, 1] or [0, 255]) or a `Decoded`. Safe to call from
        several threads (they take turns on the interpreter; `replica` gives each its own)::

            >>> import numpy as np
            >>> from medtk.runtime import Classifier
            >>> prediction = Classifier("model_int8.tflite", num_threads=1).predict(np.zeros((40, 60), np.uint8))
            >>> prediction.source, prediction.cam.shape, prediction.cam.dtype.name
            ('array', (40, 60), 'float32')

        Raises:
            RuntimeInputError: the image cannot be used: neither a path, bytes nor an array, no such
                file or a directory, a format medtk does not read, corrupt, over `max_pixels` or more
                than one frame (checked on the header, before decoding), or pixels whose meaning is
                ambiguous (floats outside [0, 1] and [0, 255], NaN or infinity, integers above 255
                that are not uint16). The message names the file; the classifier stays usable.
        """
        intensity = self.metadata.intensity
        decoded = load_decoded(image, self.max_pixels, intensity.mapping)
        pixels = decoded.pixels
        prepared = self.prepare(pixels)
        probs, raw_cam = self._run(prepared)
        index, threshold, positive = self.decide(probs)
        height, width = pixels.shape[:2]
        return Prediction(
            label=self.labels[index],
            class_index=index,
            probabilities={label: float(p) for label, p in zip(self.labels, probs)},
            cam=class_map(raw_cam, index, height, width, self.metadata.cam_geometry),
            raw_cam=raw_cam,
            source=str(image) if isinstance(image, (str, Path)) else "bytes" if isinstance(image, bytes) else "array",
            threshold=threshold,
            positive=positive,
            warnings=intensity.warnings(decoded.kind),
        )

    def decide(self, probs: np.ndarray) -> tuple[int, float | None, bool | None]:
        """(class index, threshold, positive) for one probability vector.

        A binary model with an operating point decides by its threshold on the positive class's
        probability (chosen on validation data at export); otherwise the highest probability wins.
        """
        positive_index = self.metadata.positive_index
        point = self.metadata.operating_point
        if positive_index is None:
            return int(np.argmax(probs)), None, None
        if point is None:
            index = int(np.argmax(probs))
            return index, None, index == positive_index
        positive = bool(probs[positive_index] >= point.threshold)
        return (positive_index if positive else 1 - positive_index), point.threshold, positive

    def predict_batch(self, images: Iterable[ImageSource]) -> list[Prediction]:
        return [self.predict(image) for image in images]

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """Decoded pixels -> this model's input: its size and channels, resized by the rule it was
        validated with (`ModelInput.interpolation`; imaging.RESIZE_RULES)."""
        return prepare_input(pixels, self.input_size, self.channels, self.metadata.input.interpolation)

    def predict_prepared(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Already prepared raw pixels (N, S, S, C) -> probs (N, K) and raw cams (N, h, w, K).

        For evaluation code that prepared a whole test set with `prepare` once.
        """
        batch = np.asarray(batch)
        expected = (self.input_size, self.input_size, self.channels)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            shape = ", ".join(map(str, expected))
            raise RuntimeInputError(f"prepared batch has shape {batch.shape}; expected (N, {shape})")
        if batch.dtype != np.uint8 and batch.dtype.kind != "f":
            raise RuntimeInputError(
                f"prepared batch has dtype {batch.dtype}; expected uint8 or float raw 0..255 pixels"
            )
        outputs = [self._run(image) for image in batch]
        probs = np.stack([p for p, _ in outputs]) if outputs else np.zeros((0, len(self.labels)), np.float32)
        cams = np.stack([c for _, c in outputs]) if outputs else np.zeros((0, *self._io.cam.shape[1:]), np.float32)
        return probs, cams

    def _run(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One (S, S, C) input -> probs (K,) and cam (h, w, K) as float32."""
        tensor = to_tensor(prepared, self._io.pixels)
        io, interpreter = self._io, self._interpreter
        with self._lock:
            interpreter.set_tensor(io.pixels.index, tensor)
            interpreter.invoke()
            probs = interpreter.get_tensor(io.probs.index)
            cam = interpreter.get_tensor(io.cam.index)
        return from_tensor(probs, io.probs)[0], from_tensor(cam, io.cam)[0]


def engine_for(kind: str):
    """(backend, interpreter factory) for the model's format: LiteRT for `.tflite`, ONNX Runtime (the
    `medtk[onnx]` extra, imported only now) for `.onnx`."""
    if kind == ONNX:
        from medtk.runtime.onnx_engine import load_onnx_backend, make_session

        return load_onnx_backend(), make_session
    return load_backend(), make_interpreter


def verify_model(model: bytes, name: str, trusted_keys: Iterable | None = None) -> tuple[ModelMetadata | None, Verification]:
    """The embedded metadata once the file's seal (and, with trusted keys, its signature) verifies.

    What `Classifier` does before its interpreter sees the bytes; for other code that builds an
    interpreter itself (the bench worker). Raises `ModelError`; warns for files sealed the older way.
    """
    keys = None if trusted_keys is None else list(trusted_keys)
    if keys is not None and not keys:
        raise ConfigError("trusted_keys is empty: give at least one public key, or None to skip signature checks")
    sealed = integrity.verify(model, METADATA_NAME, name)
    try:
        metadata = read_metadata(model)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(f"{name}: malformed medtk metadata ({type(error).__name__}: {error})") from None
    if sealed is not None:
        if metadata is None or metadata.seal != sealed.text():
            raise ModelError(f"{name}: the medtk metadata does not hold the seal found in the file (the file was altered)")
        key = None
        if keys is not None:
            from medtk.runtime.signing import check_signature

            key = check_signature(sealed, keys, name)
        return metadata, Verification("signed" if key else "sealed", sealed.sha256, key)
    if keys is not None:
        from medtk.runtime.signing import check_signature

        check_signature(None, keys, name)  # raises: nothing to verify
    if metadata is None:
        return None, Verification("none")
    if metadata.schema_version >= 3:
        raise ModelError(f"{name}: metadata schema {metadata.schema_version} without its seal (the file was altered)")
    if not metadata.weights_sha256:
        _warn(f"{name}: exported without any checksum (metadata schema {metadata.schema_version}); nothing "
              f"verifies it was not changed after export - re-export it with this medtk")
        return metadata, Verification("none")
    try:
        weights = weights_sha256(model)
    except (IndexError, ValueError, TypeError, OverflowError) as error:
        raise ModelError(f"{name}: corrupt TFLite flatbuffer ({type(error).__name__})") from None
    if weights != metadata.weights_sha256:
        raise ModelError(f"{name}: weights changed after export (sha256 differs from the one embedded at export)")
    _warn(f"{name}: exported before medtk sealed whole files (metadata schema {metadata.schema_version}): only "
          f"its weights are verified, not its metadata or quantization parameters - re-export it with this medtk")
    return metadata, Verification("weights-only")


def _consistent(metadata: ModelMetadata | None, name: str, io: ModelIO) -> ModelMetadata:
    """The metadata checked against the tensors; defaults from the input tensor if there is none."""
    if metadata is None:
        _warn(
            f"{name}: no medtk metadata; using defaults from the input tensor "
            f"({io.input_size}x{io.input_size}x{io.channels}, labels class_0..class_{io.num_classes - 1})"
        )
        return ModelMetadata(
            labels=tuple(f"class_{k}" for k in range(io.num_classes)),
            input=ModelInput(size=io.input_size, channels=io.channels, dtype=io.pixels.dtype.name),
            variant="unknown",
        )
    declared = metadata.input
    if (declared.size, declared.channels, declared.dtype) != (io.input_size, io.channels, io.pixels.dtype.name):
        raise ModelError(
            f"{name}: metadata says input {declared.size}x{declared.size}x{declared.channels} {declared.dtype}, "
            f"the model's tensor is {io.input_size}x{io.input_size}x{io.channels} {io.pixels.dtype.name}"
        )
    if len(metadata.labels) != io.num_classes:
        raise ModelError(
            f"{name}: metadata has {len(metadata.labels)} labels, the model outputs {io.num_classes} classes"
        )
    if metadata.positive_class is not None and metadata.positive_class not in metadata.labels:
        raise ModelError(f"{name}: metadata positive_class {metadata.positive_class!r} is not one of its labels")
    point = metadata.operating_point
    if point is not None and not 0.0 <= point.threshold <= 1.0:
        raise ModelError(f"{name}: metadata operating_point threshold {point.threshold!r} is not a probability")
    if declared.interpolation not in RESIZE_RULES:
        raise ModelError(f"{name}: its inputs were resized by {declared.interpolation!r}, which this medtk does "
                         f"not know ({', '.join(RESIZE_RULES)}); upgrade medtk")
    if declared.interpolation == LEGACY_INTERPOLATION_RULE:
        _warn(f"{name}: exported when medtk enlarged images with OpenCV's INTER_LINEAR, which rounds differently "
              "on x86-64 and ARM CPUs; it is fed as it was validated, so on an ARM device its probabilities can "
              "differ from x86's (by ~1e-2 measured). Export it again (medtk compress RUN) for inputs identical "
              "on every CPU")
    if metadata.cam_geometry is None:
        _warn(f"{name}: exported before medtk recorded where the CAM's cells sit on the input (cam_geometry); "
              "its CAM is drawn on an even grid, up to half a cell from where the model looked. Export it "
              "again (medtk compress RUN) to draw it where the model looked")
    return metadata


def failed_gate_message(metadata: ModelMetadata, name: str) -> str | None:
    """The one line saying `metadata`'s variant failed compress's quality gate, or None when it did not."""
    if not metadata.failed_gate:
        return None
    gates = "; ".join(failure.describe() for failure in metadata.quality_gate.failures) or "no gate named"
    return (f"{name}: variant {metadata.variant} failed compress's quality gate ({gates}); "
            "it is not the variant compress recommends - do not deploy it")


def _warn_failed_gate(metadata: ModelMetadata, name: str) -> None:
    message = failed_gate_message(metadata, name)
    if message is not None:
        _warn(message, FailedGateWarning)


def _warn(message: str, category: type[Warning] = UserWarning) -> None:
    warnings.warn(message, category, stacklevel=4)
