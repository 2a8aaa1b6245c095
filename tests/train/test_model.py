"""The classifier graph: flat, raw pixels in, probs and an exact CAM out."""

import numpy as np
import pytest

from medtk.errors import ConfigError, ModelError
from medtk.train.model import (
    ModelSpec,
    backbone_layers,
    build_classifier,
    load_classifier,
    set_trainable_from,
)
from medtk.train.tfenv import keras


@pytest.fixture(scope="module")
def resnet():
    return build_classifier(ModelSpec(arch="resnet50", input_size=64, channels=1, num_classes=3))


def test_resnet50_is_one_flat_functional_graph(resnet):
    k = keras()
    nested = [layer.name for layer in resnet.layers if isinstance(layer, k.Model)]
    assert nested == []  # TFMOT can only prune/quantize layers it can see
    assert resnet.get_layer("conv1_conv") is not None and resnet.get_layer("conv5_block3_out") is not None
    assert resnet.output_names == ["probs", "cam"]
    assert resnet.input_shape == (None, 64, 64, 1)


def test_cam_is_the_classifier_per_cell(resnet):
    pixels = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.float32)
    probs, cam = resnet.predict(pixels, verbose=0)
    assert cam.shape == (3, 2, 2, 3)
    logits = cam.mean(axis=(1, 2))
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, softmax, atol=1e-5)


def test_batchnorm_momentum_is_the_backbones_unless_set(resnet):
    k = keras()
    momenta = {l.momentum for l in resnet.layers if isinstance(l, k.layers.BatchNormalization)}
    assert momenta == {0.99}
    fast = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, batchnorm_momentum=0.9))
    assert {l.momentum for l in fast.layers if isinstance(l, k.layers.BatchNormalization)} == {0.9}


def test_raw_pixels_are_normalized_inside_the_graph(resnet):
    """Gray 0..255 is copied to 3 channels and mean-subtracted (caffe) before the first conv."""
    k = keras()
    probe = k.Model(resnet.input, resnet.get_layer("preprocess").output)
    out = probe.predict(np.full((1, 64, 64, 1), 200.0, np.float32), verbose=0)
    np.testing.assert_allclose(out[0, 0, 0], [200 - 103.939, 200 - 116.779, 200 - 123.68], atol=1e-3)


def test_freezing_keeps_batchnorm_frozen_when_fine_tuning(resnet):
    k = keras()
    assert set_trainable_from(resnet, None) == 0
    trainable = set_trainable_from(resnet, "conv5_block1_1_conv")
    assert trainable > 0
    layers = backbone_layers(resnet)
    assert not any(l.trainable for l in layers if isinstance(l, k.layers.BatchNormalization))
    assert not resnet.get_layer("conv4_block6_3_conv").trainable
    assert resnet.get_layer("conv5_block3_3_conv").trainable
    set_trainable_from(resnet, 0, freeze_batchnorm=False)
    assert all(l.trainable for l in layers)


def test_errors_name_the_option():
    with pytest.raises(ConfigError, match=r"unknown architecture 'resnet5'; did you mean resnet50"):
        build_classifier(ModelSpec(arch="resnet5"))
    with pytest.raises(ConfigError, match="below resnet50's minimum"):
        build_classifier(ModelSpec(input_size=16))
    with pytest.raises(ModelError, match="no such file"):
        build_classifier(ModelSpec(input_size=32, weights="/nonexistent/w.h5"))


def test_fine_tune_at_unknown_layer_lists_close_names(resnet):
    with pytest.raises(ConfigError, match="conv5_block1_1_conv"):
        set_trainable_from(resnet, "conv5_block1_1_cnv")


def test_imagenet_offline_fails_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache: Keras must try the network
    with pytest.raises(ModelError, match=r"could not load ImageNet weights for resnet50.*--weights none"):
        build_classifier(ModelSpec(input_size=32, weights="imagenet"))


def test_weights_file_loads_and_saved_model_round_trips(tmp_path):
    k = keras()
    backbone = k.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights = tmp_path / "notop.h5"
    backbone.save_weights(weights)
    model = build_classifier(ModelSpec(input_size=32, weights=str(weights)))
    assert model.get_layer("conv1_bn").momentum == 0.99  # pretrained: the application's own statistics speed
    np.testing.assert_array_equal(model.get_layer("conv1_conv").get_weights()[0], backbone.get_layer("conv1_conv").get_weights()[0])
    model.save(tmp_path / "model.keras")
    again = load_classifier(tmp_path / "model.keras")
    x = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0)[0], model.predict(x, verbose=0)[0], atol=1e-6)


def test_load_refuses_non_medtk_models(tmp_path):
    k = keras()
    plain = k.Sequential([k.Input((4,)), k.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ModelError, match="not a medtk model"):
        load_classifier(tmp_path / "plain.keras")
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(ModelError, match="cannot load as a Keras model"):
        load_classifier(tmp_path / "junk.keras")


def test_output_stride_16_doubles_the_cam_with_the_same_weights(resnet):
    from medtk.train.model import cam_grid

    k = keras()
    fine = build_classifier(ModelSpec(arch="resnet50", input_size=64, channels=1, num_classes=3, output_stride=16))
    assert cam_grid(resnet) == (2, 2) and cam_grid(fine) == (4, 4)
    assert not [layer for layer in fine.layers if isinstance(layer, k.Model)]
    assert [w.shape for w in fine.get_weights()] == [w.shape for w in resnet.get_weights()]
    fine.set_weights(resnet.get_weights())  # the same layout: a stride-32 run's weights load unchanged
    assert fine.get_layer("conv5_block1_1_conv").strides == (1, 1)
    assert fine.get_layer("conv5_block2_2_conv").dilation_rate == (2, 2)
    assert fine.get_layer("conv4_block6_2_conv").dilation_rate == (1, 1)
    assert fine.output_names == ["probs", "cam"]


def test_output_stride_refusals():
    from medtk.train.backbones import Backbone, check_output_stride

    with pytest.raises(ConfigError, match="output_stride = 8 is not valid"):
        build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, output_stride=8))
    plain = Backbone(name="plainnet", build=lambda tensor, weights: None, preprocessing="tf", fine_tune_at="x")
    with pytest.raises(ConfigError, match="not available for plainnet .*supported by: mobilenetv2, resnet101, resnet50"):
        check_output_stride(plain, 16)


@pytest.mark.slow
def test_output_stride_16_saves_loads_and_converts_with_builtin_ops(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from medtk.compress.convert import convert

    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, output_stride=16))
    model.save(tmp_path / "model.keras")
    loaded = load_classifier(tmp_path / "model.keras")
    assert loaded.get_layer("cam").output_shape[1:3] == (2, 2)
    calibration = [np.random.default_rng(0).integers(0, 256, (32, 32, 1)).astype(np.uint8) for _ in range(4)]
    runner = Interpreter(model_content=convert(loaded, "int8", calibration)).get_signature_runner()
    assert runner(pixels=calibration[0][None])["cam"].shape == (1, 2, 2, 2)
