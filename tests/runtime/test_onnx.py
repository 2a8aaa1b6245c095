"""`.onnx` medtk models through `Classifier` (ONNX Runtime): the same answers as Keras and the `.tflite`,
the same metadata, seal and signature, and tampering refused before ONNX Runtime sees the bytes."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.errors import ConfigError, ModelError
from medtk.runtime import Classifier
from medtk.runtime.metadata import read_metadata
from tests.runtime.runtime_models import GRAY_LABELS, gray_model, synthetic_images


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synthetic_images(np.random.default_rng(11), 24)


def test_onnx_float32_agrees_with_keras_and_the_float32_tflite(onnx_models, float_model, images):
    onnx = Classifier(onnx_models["onnx_float32"], num_threads=1)
    tflite = Classifier(float_model, num_threads=1)
    keras_probs, keras_cams = (np.asarray(out) for out in gray_model()(images.astype(np.float32), training=False))
    probs, cams = onnx.predict_prepared(images)
    tflite_probs, tflite_cams = tflite.predict_prepared(images)
    assert probs.shape == keras_probs.shape and cams.shape == keras_cams.shape
    assert keras_probs.std() > 0.01  # a real classifier, not a constant 0.5
    np.testing.assert_allclose(probs, keras_probs, atol=1e-4)
    np.testing.assert_allclose(cams, keras_cams, atol=1e-3 * max(1.0, float(np.abs(keras_cams).max())))
    np.testing.assert_allclose(probs, tflite_probs, atol=1e-4)
    np.testing.assert_allclose(cams, tflite_cams, atol=1e-3 * max(1.0, float(np.abs(tflite_cams).max())))


def test_classifier_on_onnx_reports_its_provider_and_gives_the_same_prediction(onnx_models, float_model, gray_image):
    onnx = Classifier(onnx_models["onnx_float32"], num_threads=1)
    tflite = Classifier(float_model, num_threads=1)
    assert onnx.format == "onnx" and tflite.format == "tflite"
    assert onnx.backend.name == "onnxruntime"
    assert onnx.placement.provider == "CPUExecutionProvider" and onnx.placement.delegate == "cpu"
    assert onnx.placement.num_threads == 1
    assert onnx.verification.status == "sealed"
    assert onnx.labels == GRAY_LABELS and onnx.metadata.variant == "onnx_float32"
    got, want = onnx.predict(gray_image), tflite.predict(gray_image)
    assert got.label == want.label
    for label in GRAY_LABELS:
        assert got.probabilities[label] == pytest.approx(want.probabilities[label], abs=1e-4)
    assert got.cam.shape == gray_image.shape and np.corrcoef(got.cam.ravel(), want.cam.ravel())[0, 1] > 0.999
    twin = onnx.replica(num_threads=1)
    assert twin.predict(gray_image).probabilities == got.probabilities


def test_an_onnx_delegate_that_is_not_a_provider_choice_is_refused(onnx_models):
    with pytest.raises(ConfigError, match="delegate='libfoo.so' is not valid for an .onnx model"):
        Classifier(onnx_models["onnx_float32"], num_threads=1, delegate="libfoo.so")
    with pytest.warns(RuntimeWarning, match="gpu unavailable"):
        assert Classifier(onnx_models["onnx_float32"], num_threads=1, delegate="gpu").placement.fallback


def test_onnx_metadata_reads_without_onnx_runtime(onnx_models):
    metadata = read_metadata(onnx_models["onnx_int8"])
    assert metadata.labels == GRAY_LABELS and metadata.variant == "onnx_int8"
    assert metadata.seal.startswith("medtk-seal/1 sha256=") and metadata.cam_geometry is not None


def _flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


@pytest.fixture()
def no_onnx_runtime_session(monkeypatch):
    """Fail the test if ONNX Runtime is asked to parse anything."""
    import onnxruntime

    def refuse(*args, **kwargs):
        raise AssertionError("ONNX Runtime saw the bytes of a model whose seal does not verify")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


@pytest.mark.parametrize("where", ["weights", "metadata"])
def test_tampered_onnx_is_refused_before_onnx_runtime_sees_it(onnx_models, tmp_path, where, no_onnx_runtime_session):
    data = onnx_models["onnx_int8"].read_bytes()
    if where == "weights":
        offset = len(data) // 3  # inside the graph's initializers
    else:
        offset = data.index(b'"threshold"') if b'"threshold"' in data else data.index(b'"model_version": "') + 20
    path = tmp_path / "tampered.onnx"
    path.write_bytes(_flip(data, offset))
    with pytest.raises(ModelError, match="changed after export|malformed|corrupt"):
        Classifier(path, num_threads=1)


def test_signed_onnx_loads_with_its_key_only(onnx_models, tmp_path, gray_image):
    from medtk.runtime.signing import generate_key_pair, sign_model

    private, public = generate_key_pair(tmp_path / "key")
    _, other = generate_key_pair(tmp_path / "other")
    signed = tmp_path / "signed.onnx"
    signed.write_bytes(sign_model(onnx_models["onnx_float32"], private))
    clf = Classifier(signed, num_threads=1, trusted_keys=[public])
    assert clf.verification.status == "signed"
    assert clf.predict(gray_image).label in GRAY_LABELS
    with pytest.raises(ModelError, match="signed by"):
        Classifier(signed, num_threads=1, trusted_keys=[other])
    with pytest.raises(ModelError, match="not signed|unsigned"):
        Classifier(onnx_models["onnx_float32"], num_threads=1, trusted_keys=[public])


def test_onnx_int8_runs_close_to_float32(onnx_models, images):
    float_probs, _ = Classifier(onnx_models["onnx_float32"], num_threads=1).predict_prepared(images)
    int8_probs, int8_cams = Classifier(onnx_models["onnx_int8"], num_threads=1).predict_prepared(images)
    assert int8_cams.dtype == np.float32
    assert np.corrcoef(float_probs[:, 1], int8_probs[:, 1])[0, 1] > 0.9


def test_the_bench_worker_measures_onnx_through_onnx_runtime(onnx_models):
    from medtk.runtime.bench.worker import measure

    bench = measure(onnx_models["onnx_int8"], threads=1, runs=2, warmup=0)
    assert bench.backend.startswith("onnxruntime ") and bench.backend.endswith("(CPUExecutionProvider)")
    assert bench.variant == "onnx_int8" and bench.delegate == "cpu" and bench.threads == 1
    assert bench.macs == 0 and bench.bare.runs == 2 and bench.end_to_end.p50_ms > 0


def test_tensorrt_is_asked_for_its_int8_flag_for_a_qdq_graph_only(onnx_models):
    """TensorRT refuses to build a QDQ graph without INT8 enabled (onnx_engine.py); no GPU here, so the
    providers handed to ONNX Runtime are what is checked."""
    from medtk.runtime.onnx_engine import PROVIDERS, with_options

    int8, float32 = onnx_models["onnx_int8"].read_bytes(), onnx_models["onnx_float32"].read_bytes()
    assert with_options(list(PROVIDERS), int8) == [("TensorrtExecutionProvider", {"trt_int8_enable": "True"}),
                                                   "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert with_options(list(PROVIDERS), float32) == list(PROVIDERS)
    assert with_options(["CPUExecutionProvider"], int8) == ["CPUExecutionProvider"]
