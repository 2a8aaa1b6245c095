"""Bad models and bad inputs: one-line ModelError / RuntimeInputError, and the Classifier survives."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.errors import ConfigError, MedtkError, ModelError, RuntimeInputError
from medtk.runtime import Classifier


@pytest.fixture(scope="module")
def clf(float_model) -> Classifier:
    return Classifier(float_model, num_threads=1, delegate="cpu")


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    assert isinstance(error.value, MedtkError)
    return message


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such model file") as error:
        Classifier(tmp_path / "absent.tflite")
    assert str(tmp_path / "absent.tflite") in _one_line(error)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("these are not weights\n" * 10)
    with pytest.raises(ModelError, match="not a TFLite model") as error:
        Classifier(path)
    _one_line(error)


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_truncated_model(fraction, float_model, tmp_path):
    data = float_model.read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelError, match="truncated.tflite") as error:
        Classifier(path)
    _one_line(error)


def test_weights_changed_after_export(test_models):
    with pytest.raises(ModelError, match="the file changed after export") as error:
        Classifier(test_models.tampered)
    _one_line(error)


def test_model_without_metadata_runs_with_defaults(test_models, gray_image):
    with pytest.warns(UserWarning, match="no medtk metadata"):
        bare = Classifier(test_models.bare, num_threads=1)
    assert bare.labels == ("class_0", "class_1")
    assert (bare.input_size, bare.channels, bare.input_dtype) == (64, 1, np.float32)
    reference = Classifier(test_models.float32, num_threads=1)
    assert list(bare.predict(gray_image).probabilities.values()) == list(
        reference.predict(gray_image).probabilities.values()
    )


def test_invalid_delegate_and_threads(float_model):
    with pytest.raises(ConfigError, match="delegate='tpu'"):
        Classifier(float_model, delegate="tpu")
    with pytest.raises(ConfigError, match="num_threads=0"):
        Classifier(float_model, num_threads=0)


def _dicom_without_pixels(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelData
    path = tmp_path / "no_pixels.dcm"
    dataset.save_as(path)
    return path


def _bad_inputs(tmp_path):
    text_png = tmp_path / "report.png"
    text_png.write_text("not an image")
    empty_jpg = tmp_path / "empty.jpg"
    empty_jpg.write_bytes(b"")
    return {
        "text named .png": (text_png, "not a readable image"),
        "empty file": (empty_jpg, "not a readable image"),
        "missing file": (tmp_path / "absent.png", "no such file"),
        "4-D array": (np.zeros((1, 8, 8, 1), np.uint8), "expected a gray"),
        "complex dtype": (np.zeros((8, 8), np.complex64), "unsupported pixel type"),
        "bool dtype": (np.zeros((8, 8), bool), "unsupported pixel type"),
        "string dtype": (np.full((8, 8), "x"), "unsupported pixel type"),
        "NaN pixels": (np.full((8, 8), np.nan, np.float32), "NaN"),
        "empty array": (np.zeros((0, 8), np.uint8), "empty image"),
        "a list": ([[0, 1], [2, 3]], "expected an image path, the file.s bytes or a numpy array"),
        "DICOM without pixel data": (_dicom_without_pixels(tmp_path), "no pixel data"),
    }


def test_bad_inputs_raise_one_line_and_the_classifier_stays_usable(clf, gray_image, tmp_path):
    expected = clf.predict(gray_image).probabilities
    for name, (source, message) in _bad_inputs(tmp_path).items():
        with pytest.raises(RuntimeInputError, match=message) as error:
            clf.predict(source)
        _one_line(error)
        assert clf.predict(gray_image).probabilities == expected, f"classifier broken after {name}"


def test_huge_image_is_refused_before_inference(float_model, gray_image, tmp_path):
    import cv2

    small_limit = Classifier(float_model, num_threads=1, max_pixels=90 * 120 - 1)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), gray_image)
    for source in (gray_image, path):
        with pytest.raises(RuntimeInputError, match="over the limit") as error:
            small_limit.predict(source)
        _one_line(error)
    assert small_limit.predict(gray_image[:50]).cam.shape == (50, 120)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((2, 32, 32, 1), np.uint8), "expected \\(N, 64, 64, 1\\)"),
        (np.zeros((64, 64, 1), np.uint8), "expected \\(N, 64, 64, 1\\)"),
        (np.zeros((2, 64, 64, 1), np.int64), "dtype int64"),
    ],
)
def test_predict_prepared_rejects_wrong_batches(batch, message, clf):
    with pytest.raises(RuntimeInputError, match=message) as error:
        clf.predict_prepared(batch)
    _one_line(error)
