"""Classifier on real TFLite models: every input kind, CAM contract, int8 vs float32, threads."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from tests.runtime.runtime_models import synthetic_images, toy_labels

from medtk.errors import ConfigError
from medtk.runtime import Classifier, Prediction
from medtk.runtime.imaging import prepare_input


@pytest.fixture(scope="module")
def float_clf(float_model) -> Classifier:
    return Classifier(float_model, num_threads=2, delegate="cpu")


@pytest.fixture(scope="module")
def int8_clf(int8_model) -> Classifier:
    return Classifier(int8_model, num_threads=2, delegate="cpu")


@pytest.fixture(scope="module")
def rgb_clf(rgb_model) -> Classifier:
    return Classifier(rgb_model, num_threads=2, delegate="cpu")


def _check(prediction: Prediction, labels: tuple[str, ...], shape: tuple[int, int], quantized: bool = False) -> None:
    assert list(prediction.probabilities) == list(labels)
    # an int8 model's softmax output is quantized in steps of 1/256 (1.0 itself is not representable)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=4 / 256 if quantized else 1e-4)
    assert prediction.label == labels[prediction.class_index]
    assert prediction.probabilities[prediction.label] == max(prediction.probabilities.values())
    assert prediction.cam.shape == shape and prediction.cam.dtype == np.float32
    assert prediction.cam.min() >= 0.0 and prediction.cam.max() <= 1.0
    assert prediction.raw_cam.shape == (2, 2, len(labels))


def test_reads_embedded_metadata(float_clf, int8_clf, gray_labels):
    assert float_clf.labels == gray_labels and int8_clf.labels == gray_labels
    assert (float_clf.input_size, float_clf.channels) == (64, 1)
    assert float_clf.input_dtype == np.float32 and int8_clf.input_dtype == np.uint8
    assert int8_clf.metadata.variant == "int8"
    assert float_clf.backend.name == "ai-edge-litert" and float_clf.backend.version[0].isdigit()
    assert float_clf.delegate == "cpu" and float_clf.num_threads == 2 and float_clf.placement.fallback is None


@pytest.mark.parametrize("kind", ["png8", "png16", "jpeg", "tiff16"])
@pytest.mark.parametrize("variant", ["float", "int8"])
def test_predict_image_files(kind, variant, image_files, float_clf, int8_clf, gray_labels):
    clf = float_clf if variant == "float" else int8_clf
    prediction = clf.predict(image_files[kind])
    _check(prediction, gray_labels, (90, 120), quantized=variant == "int8")
    assert prediction.source == str(image_files[kind])


def test_file_and_array_give_the_same_result(image_files, gray_image, float_clf):
    from_file = float_clf.predict(image_files["png8"])
    from_array = float_clf.predict(gray_image)
    assert from_array.source == "array"
    assert from_file.probabilities == from_array.probabilities
    np.testing.assert_array_equal(from_file.cam, from_array.cam)


def test_16_bit_matches_8_bit_after_scaling(gray_image, gray_image16, float_clf):
    eight, sixteen = float_clf.predict(gray_image), float_clf.predict(gray_image16)
    for label in eight.probabilities:
        assert sixteen.probabilities[label] == pytest.approx(eight.probabilities[label], abs=0.02)


def test_real_dicom(float_clf, int8_clf, gray_labels):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    _check(float_clf.predict(path), gray_labels, (128, 128))
    _check(int8_clf.predict(path), gray_labels, (128, 128), quantized=True)


def test_rgb_and_gray_arrays_on_both_model_kinds(gray_image, rgb_image, float_clf, rgb_clf, gray_labels, rgb_labels):
    _check(float_clf.predict(rgb_image), gray_labels, (90, 120))
    _check(rgb_clf.predict(rgb_image), rgb_labels, (90, 120))
    _check(rgb_clf.predict(gray_image), rgb_labels, (90, 120))
    _check(rgb_clf.predict(rgb_image[:, :, :1]), rgb_labels, (90, 120))  # HxWx1 is gray


def test_rgb_file_matches_rgb_array(image_files, rgb_image, rgb_clf):
    assert rgb_clf.predict(image_files["rgb_png"]).probabilities == rgb_clf.predict(rgb_image).probabilities


def test_probabilities_are_softmax_of_mean_cam(gray_image, rgb_image, float_clf, rgb_clf):
    """The CAM head is exact: mean over cells of the per-cell logits = the logits behind probs."""
    for clf, image in ((float_clf, gray_image), (rgb_clf, rgb_image), (float_clf, 255 - gray_image)):
        prediction = clf.predict(image)
        logits = prediction.raw_cam.mean(axis=(0, 1))
        softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(softmax, list(prediction.probabilities.values()), atol=1e-4)


def test_cam_is_the_predicted_class_map_upsampled(gray_image, float_clf):
    prediction = float_clf.predict(gray_image)
    cells = prediction.raw_cam[:, :, prediction.class_index]
    assert prediction.cam.max() == pytest.approx(1.0) and prediction.cam.min() == pytest.approx(0.0)
    # the brightest cell's quadrant holds the CAM's maximum
    row, col = np.unravel_index(np.argmax(cells), cells.shape)
    peak_row, peak_col = np.unravel_index(np.argmax(prediction.cam), prediction.cam.shape)
    assert (peak_row >= 45) == (row == 1) and (peak_col >= 60) == (col == 1)


def test_the_fixture_model_is_a_real_classifier(float_clf):
    """Guards the other checks against a vacuous model (constant 0.5 outputs)."""
    images = synthetic_images(np.random.default_rng(11), 40, size=80)
    predicted = [float_clf.predict(image).class_index for image in images]
    assert np.mean(np.array(predicted) == toy_labels(images)) >= 0.7


def test_int8_agrees_with_float32(gray_image, float_clf, int8_clf):
    images = [gray_image, 255 - gray_image, *synthetic_images(np.random.default_rng(12), 14, size=80)[..., 0]]
    confident = 0
    for image in images:
        reference, quantized = float_clf.predict(image), int8_clf.predict(image)
        p = reference.probabilities["pneumonia"]
        if 0.2 < p < 0.8:  # near the decision boundary quantization may tip the label
            continue
        confident += 1
        assert quantized.label == reference.label
        assert quantized.probabilities["pneumonia"] == pytest.approx(p, abs=0.1)
    assert confident >= 8


def test_predict_batch(image_files, gray_image, float_clf):
    batch = float_clf.predict_batch([image_files["png8"], gray_image, image_files["jpeg"]])
    assert [p.source for p in batch] == [str(image_files["png8"]), "array", str(image_files["jpeg"])]
    assert batch[0].probabilities == batch[1].probabilities


@pytest.mark.parametrize("variant", ["float", "int8"])
def test_predict_prepared_matches_predict(variant, gray_image, float_clf, int8_clf):
    clf = float_clf if variant == "float" else int8_clf
    images = [gray_image, 255 - gray_image, gray_image[::-1]]
    prepared = np.stack([prepare_input(image, 64, 1) for image in images])
    probs, cams = clf.predict_prepared(prepared)
    assert probs.shape == (3, 2) and cams.shape == (3, 2, 2, 2) and probs.dtype == np.float32
    for row, image in zip(probs, images):
        np.testing.assert_allclose(row, list(clf.predict(image).probabilities.values()), atol=1e-6)
    float_probs, _ = clf.predict_prepared(prepared.astype(np.float32))
    np.testing.assert_allclose(float_probs, probs, atol=1e-6)


def test_prediction_is_immutable(gray_image, float_clf):
    prediction = float_clf.predict(gray_image)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prediction.label = "other"
    with pytest.raises(ValueError):
        prediction.cam[0, 0] = 0.5
    assert prediction.to_dict()["cam_shape"] == [90, 120]


def test_the_json_form_keeps_its_keys_and_rounds_only_when_asked(gray_image, float_clf):
    prediction = float_clf.predict(gray_image)
    whole, rounded = prediction.to_dict(), prediction.to_dict(digits=2)
    assert list(whole) == ["source", "label", "class_index", "probabilities", "threshold", "positive", "warnings",
                           "cam_shape"]
    assert whole["probabilities"] == prediction.probabilities
    assert rounded["probabilities"] == {label: round(p, 2) for label, p in prediction.probabilities.items()}
    assert {key: value for key, value in rounded.items() if key != "probabilities"} == {
        key: value for key, value in whole.items() if key != "probabilities"}

def test_thread_safe(gray_image, rgb_image, float_clf):
    rng = np.random.default_rng(5)
    images = [gray_image, rgb_image, 255 - gray_image] + [
        rng.integers(0, 256, (40 + 7 * i, 50), dtype=np.uint8) for i in range(5)
    ]
    expected = [float_clf.predict(image).probabilities for image in images]
    results: dict[tuple[int, int], dict] = {}

    def work(worker: int) -> None:
        for round_ in range(6):
            for index in range(len(images)):
                order = (index + worker) % len(images)
                results[(worker, round_ * 100 + order)] = (order, float_clf.predict(images[order]).probabilities)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 * 6 * len(images)
    for order, probabilities in results.values():
        assert probabilities == expected[order]


def test_replicas_run_side_by_side_and_agree(gray_image, int8_model, int8_clf):
    """A replica has an interpreter of its own (so threads need not take turns) on the same verified bytes."""
    replica = int8_clf.replica(num_threads=1)
    assert replica._interpreter is not int8_clf._interpreter and replica._lock is not int8_clf._lock
    assert replica.num_threads == 1 and int8_clf.num_threads == 2
    assert replica.metadata is int8_clf.metadata and replica.verification == int8_clf.verification
    rng = np.random.default_rng(9)
    images = [gray_image, 255 - gray_image] + [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(4)]
    expected = [int8_clf.predict(image) for image in images]
    results: dict[tuple[int, int], tuple] = {}

    def work(classifier: Classifier, worker: int) -> None:
        for index, image in enumerate(images * 3):
            prediction = classifier.predict(image)
            results[(worker, index)] = (index % len(images), prediction.probabilities, prediction.raw_cam)

    threads = [threading.Thread(target=work, args=(c, w)) for w, c in enumerate((int8_clf, replica))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 * 3 * len(images)
    for order, probabilities, raw_cam in results.values():
        assert probabilities == expected[order].probabilities
        np.testing.assert_array_equal(raw_cam, expected[order].raw_cam)
    with pytest.raises(ConfigError, match="num_threads"):
        int8_clf.replica(num_threads=0)
