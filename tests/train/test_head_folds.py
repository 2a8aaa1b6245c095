"""Exact head rewrites: centring the class maps (probs unchanged, maps lose their shared part) and folding T
into the `cam` convolution (probs = softmax(logits / T), CAM / T, same shape)."""

import numpy as np
import pytest

from medtk.clinical.calibration import softmax
from medtk.errors import ConfigError, ModelError
from medtk.train.head_folds import center_class_maps, fold_temperature
from medtk.train.model import ModelSpec, build_classifier
from medtk.train.tfenv import keras


@pytest.fixture(scope="module")
def model():
    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=3))
    cam = model.get_layer("cam")
    rng = np.random.default_rng(0)
    kernel = cam.get_weights()[0]
    cam.set_weights([rng.normal(0, 0.5, kernel.shape).astype(np.float32), np.array([0.3, -0.2, 0.1], np.float32)])
    return model


def test_folded_model_outputs_the_temperature_scaled_softmax_and_cam(model):
    pixels = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 1)).astype(np.float32)
    probs_before, cam_before = model.predict(pixels, verbose=0)
    logits = cam_before.mean(axis=(1, 2))
    fold_temperature(model, 2.5)
    probs_after, cam_after = model.predict(pixels, verbose=0)
    assert cam_after.shape == cam_before.shape
    np.testing.assert_allclose(cam_after, cam_before / 2.5, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs_after, softmax(logits, 2.5), rtol=1e-5, atol=1e-6)
    assert not np.allclose(probs_after, probs_before, atol=1e-3)  # the probabilities did move
    assert (probs_after.argmax(1) == probs_before.argmax(1)).all()
    fold_temperature(model, 1 / 2.5)  # folding is linear: the inverse temperature undoes it
    np.testing.assert_allclose(model.predict(pixels, verbose=0)[0], probs_before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperatures_are_refused(model, bad):
    with pytest.raises(ConfigError, match=f"temperature must be a finite number > 0, got {bad!r}"):
        fold_temperature(model, bad)


def test_a_model_without_cam_is_refused():
    k = keras()
    inputs = k.Input((2,))
    with pytest.raises(ModelError, match="has no 'cam' layer"):
        fold_temperature(k.Model(inputs, k.layers.Dense(2)(inputs), name="plain"), 2.0)


def test_centring_keeps_every_probability_and_leaves_each_map_its_share_of_the_decision(model):
    pixels = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 1)).astype(np.float32)
    probs_before, cam_before = model.predict(pixels, verbose=0)
    center_class_maps(model)
    probs_after, cam_after = model.predict(pixels, verbose=0)
    np.testing.assert_allclose(probs_after, probs_before, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cam_after, cam_before - cam_before.mean(axis=-1, keepdims=True), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cam_after.sum(axis=-1), 0.0, atol=1e-4)  # nothing shared by all classes is left
    assert np.abs(cam_before.sum(axis=-1)).max() > 1e-2  # ... and there was something to remove
