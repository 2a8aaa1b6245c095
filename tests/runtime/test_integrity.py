"""The seal covers the whole file but its own slot; signatures ride in the slot; older files still load (with a warning)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medtk.errors import ConfigError, ModelError
from medtk.runtime.classifier import Classifier
from medtk.runtime.flatbuffer import embed_named_buffer, read_named_buffer, weights_sha256
from medtk.runtime.integrity import SLOT_LENGTH, canonical_sha256, fill, read_seal
from medtk.runtime.metadata import METADATA_NAME, embed_metadata, read_metadata
from medtk.runtime.signing import generate_key_pair, key_id, load_public_key, sign_model
from tests.runtime.runtime_models import with_operating_point


def _metadata_span(model: bytes) -> tuple[int, int]:
    data = read_named_buffer(model, METADATA_NAME)
    start = model.find(data)
    return start, start + len(data)


def tamper_text(model: bytes, old: str, new: str) -> bytes:
    """A text edit of the embedded JSON, the way a hostile user would do it (same length, nothing else moves)."""
    assert len(old) == len(new), "an in-place edit keeps the length"
    start, end = _metadata_span(model)
    data = model[start:end]
    assert data.count(old.encode()) == 1, f"{old!r} is not unique in the metadata"
    return model[:start] + data.replace(old.encode(), new.encode()) + model[end:]


@pytest.fixture(scope="module")
def clinical_model(test_models, tmp_path_factory) -> Path:
    """The float model with a positive class and an operating point, sealed as compress seals it."""
    path = tmp_path_factory.mktemp("clinical") / "clinical.tflite"
    path.write_bytes(with_operating_point(test_models.float32.read_bytes()))
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private, public = generate_key_pair(folder / "hospital.pem")
    other_private, other_public = generate_key_pair(folder / "other.pem")
    return {"private": private, "public": public, "other_private": other_private, "other_public": other_public}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_sealed_model_verifies_and_says_so(clinical_model):
    classifier = Classifier(clinical_model, num_threads=1)
    assert classifier.verification.status == "sealed" and len(classifier.verification.sha256) == 64
    assert classifier.metadata.schema_version == 3


# Every field an integrator relies on, edited in place in the JSON text: each edit is refused.
TAMPERS = {
    "labels swapped": ('"normal",\n  "pneumonia"', '"pneumonia",\n  "normal"'),
    "threshold": ('"threshold": 0.5', '"threshold": 0.9'),
    "positive_class": ('"positive_class": "pneumonia"', '"positive_class": "normal"   '),
    "input size": ('"size": 64', '"size": 32'),
    "intensity mapping": ('"mapping": "full-range/1"', '"mapping": "full-range/2"'),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_metadata_tampering_is_refused(clinical_model, tmp_path, field):
    old, new = TAMPERS[field]
    model = clinical_model.read_bytes()
    path = _write(tmp_path, "tampered.tflite", tamper_text(model, old, new))
    with pytest.raises(ModelError, match="the file changed after export") as error:
        Classifier(path, num_threads=1)
    assert "\n" not in str(error.value)


def _weight_scale_offset(model: bytes) -> int:
    """The byte offset of the per-channel scales of the last int8 convolution's weights (the backbone's: int8
    keeps its head float), at a place in the file where those bytes occur once."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    for index in reversed(range(graph.TensorsLength())):
        quantization = graph.Tensors(index).Quantization()
        if quantization is not None and quantization.ScaleLength() > 1:
            scales = quantization.ScaleAsNumpy().astype("<f4").tobytes()
            if model.count(scales) == 1:
                return model.find(scales)
    raise AssertionError("no per-channel quantized weights")


def test_one_bit_in_a_quantization_scale_is_refused(int8_model, tmp_path):
    model = int8_model.read_bytes()
    offset = _weight_scale_offset(model)
    flipped = bytearray(model)
    flipped[offset + 2] ^= 0x01
    assert weights_sha256(bytes(flipped)) == weights_sha256(model)  # what the old checksum missed
    with pytest.raises(ModelError, match="the file changed after export"):
        Classifier(_write(tmp_path, "flipped.tflite", bytes(flipped)), num_threads=1)


def test_a_digest_recomputed_after_an_edit_is_caught_only_by_a_signature(clinical_model, keys, tmp_path):
    signed = sign_model(clinical_model, keys["private"])
    edited = tamper_text(signed, '"threshold": 0.5', '"threshold": 0.9')
    found = read_seal(edited, METADATA_NAME, "edited")
    assert found is not None
    sealed, start = found
    forged = fill(edited, start, replace(sealed, sha256=canonical_sha256(edited, start)))  # old signature kept
    path = _write(tmp_path, "forged.tflite", forged)
    assert Classifier(path, num_threads=1).metadata.operating_point.threshold == 0.9  # integrity alone: consistent
    with pytest.raises(ModelError, match="invalid signature"):
        Classifier(path, num_threads=1, trusted_keys=[keys["public"]])
    resealed = _write(tmp_path, "resealed.tflite", embed_metadata(clinical_model.read_bytes(), read_metadata(forged)))
    with pytest.raises(ModelError, match="unsigned model refused"):
        Classifier(resealed, num_threads=1, trusted_keys=[keys["public"]])


def test_signed_models_load_with_their_key_only(clinical_model, keys, tmp_path, gray_image):
    signed = sign_model(clinical_model, keys["private"])
    assert len(signed) == len(clinical_model.read_bytes())  # the signature fills the slot in place
    path = _write(tmp_path, "signed.tflite", signed)
    classifier = Classifier(path, num_threads=1, trusted_keys=[keys["other_public"], keys["public"]])
    assert classifier.verification.status == "signed"
    assert classifier.verification.key_id == key_id(load_public_key(keys["public"]))
    reference = Classifier(clinical_model, num_threads=1)
    assert classifier.predict(gray_image).probabilities == reference.predict(gray_image).probabilities
    with pytest.raises(ModelError, match="not one of the trusted keys"):
        Classifier(path, num_threads=1, trusted_keys=[keys["other_public"]])
    with pytest.raises(ModelError, match="unsigned model refused"):
        Classifier(clinical_model, num_threads=1, trusted_keys=[keys["public"]])
    with pytest.raises(ConfigError, match="trusted_keys is empty"):
        Classifier(path, num_threads=1, trusted_keys=[])
    with pytest.raises(ConfigError, match="not a PEM public key"):
        Classifier(path, num_threads=1, trusted_keys=[clinical_model])


def test_signing_refuses_an_altered_model(clinical_model, keys):
    edited = tamper_text(clinical_model.read_bytes(), '"threshold": 0.5', '"threshold": 0.9')
    with pytest.raises(ModelError, match="the file changed after export"):
        sign_model(edited, keys["private"])


def _legacy(model: bytes, **changes) -> bytes:
    """The model as medtk schema 2 exported it: weights-only checksum, no seal, no intensity."""
    data = json.loads(read_named_buffer(model, METADATA_NAME))
    for key in ("seal", "intensity"):
        data.pop(key)
    data.update({"schema_version": 2, **changes})
    return embed_named_buffer(model, METADATA_NAME, json.dumps(data).encode())


def test_older_models_load_with_a_warning_and_their_own_intensity_mapping(float_model, tmp_path, gray_image16):
    path = _write(tmp_path, "legacy.tflite", _legacy(float_model.read_bytes()))
    with pytest.warns(UserWarning, match="only its weights are verified"):
        legacy = Classifier(path, num_threads=1)
    assert legacy.verification.status == "weights-only"
    assert legacy.metadata.intensity.mapping == "minmax-per-image"
    prediction = legacy.predict(gray_image16)
    assert any("min-max scaled per image" in warning for warning in prediction.warnings)
    with pytest.raises(ModelError, match="not sealed by medtk|unsigned"):
        Classifier(path, num_threads=1, trusted_keys=[_public_pem()])


def _public_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_older_model_with_changed_weights_and_schema_3_without_seal_are_refused(float_model, tmp_path):
    model = _legacy(float_model.read_bytes(), weights_sha256="0" * 64)
    with pytest.raises(ModelError, match="weights changed after export"):
        Classifier(_write(tmp_path, "legacy_bad.tflite", model), num_threads=1)
    stripped = _legacy(float_model.read_bytes(), schema_version=3)
    with pytest.raises(ModelError, match="without its seal"):
        Classifier(_write(tmp_path, "stripped.tflite", stripped), num_threads=1)


def test_the_slot_has_one_fixed_length(clinical_model):
    model = clinical_model.read_bytes()
    sealed, start = read_seal(model, METADATA_NAME, "m")
    assert len(sealed.text()) == SLOT_LENGTH and model[start : start + SLOT_LENGTH].decode() == sealed.text()
    assert canonical_sha256(model, start) == sealed.sha256
    assert np.frombuffer(model[start : start + SLOT_LENGTH], np.uint8).size == SLOT_LENGTH
