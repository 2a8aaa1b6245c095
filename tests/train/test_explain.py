"""Grad-CAM, Grad-CAM++, feature maps and layer choice on small untrained models."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.errors import ConfigError
from medtk.train.explain import explain, explainable_layers, feature_maps, finer_layer, last_feature_layer
from medtk.train.model import ModelSpec, build_classifier


@pytest.fixture(scope="module")
def resnet():
    return build_classifier(ModelSpec(arch="resnet50", input_size=64, channels=1, num_classes=2))


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.uint8)


def test_gradcam_on_the_last_feature_map_is_the_cam_without_its_bias(resnet, pixels):
    """A GAP -> linear head: d logit / d A is the class weight / (h w), so Grad-CAM = ReLU(CAM - b) / (h w)."""
    cam = explain(resnet, pixels, "cam")
    grad = explain(resnet, pixels, "gradcam", last_feature_layer(resnet), class_index=cam.class_indices)
    bias = resnet.get_layer("cam").get_weights()[1][cam.class_indices][:, None, None]
    np.testing.assert_allclose(grad.maps, np.maximum(cam.maps - bias, 0) / 4, rtol=1e-4, atol=1e-5)
    assert last_feature_layer(resnet) == "conv5_block3_out"


def test_the_default_gradcam_layer_is_conv4_at_twice_the_cam_resolution(resnet, pixels):
    assert finer_layer(resnet) == "conv4_block6_out"
    for method in ("gradcam", "gradcam++"):
        result = explain(resnet, pixels, method, class_index=1)
        assert result.layer == "conv4_block6_out" and result.maps.shape == (3, 4, 4)
        assert (result.maps >= 0).all() and result.class_indices.tolist() == [1, 1, 1]
    assert explain(resnet, pixels, "cam").maps.shape == (3, 2, 2)


def test_layer_and_method_mistakes_are_one_line_errors(resnet, pixels):
    with pytest.raises(ConfigError, match=r"--layer 'conv4_block6_ot' .*close matches: conv4_block6_out"):
        explain(resnet, pixels, "gradcam", "conv4_block6_ot")
    with pytest.raises(ConfigError, match="does not apply to --method cam"):
        explain(resnet, pixels, "cam", "conv4_block6_out")
    with pytest.raises(ConfigError, match="did you mean gradcam"):
        explain(resnet, pixels, "gradcm")
    with pytest.raises(ConfigError, match="outside the model's 2 classes"):
        explain(resnet, pixels, "cam", class_index=2)
    assert "pixels" not in explainable_layers(resnet) and "probs" not in explainable_layers(resnet)


def test_feature_maps_are_the_strongest_channels(resnet, pixels):
    result = feature_maps(resnet, pixels[:1], "conv2_block1_out", top=5)
    assert result.maps.shape == (1, 16, 16, 5) and result.channels.shape == (1, 5)
    means = result.maps.mean(axis=(1, 2))[0]
    assert (np.diff(means) <= 1e-6).all()
    with pytest.raises(ConfigError, match="--features"):
        feature_maps(resnet, pixels[:1], "nope")
