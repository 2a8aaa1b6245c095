"""Transfer from a medtk run folder or an exported backbone file: by name and shape, all or nothing."""

import json

import numpy as np
import pytest

from medtk.errors import ConfigError, ModelError
from medtk.train.model import ModelSpec, backbone_layers, build_classifier
from medtk.train.tfenv import keras
from medtk.train.transfer import (
    LoadedWeights,
    WeightsSource,
    export_backbone_weights,
    load_backbone_weights,
    resolve_weights,
)


def _model(seed: int, **spec):
    keras().utils.set_random_seed(seed)
    return build_classifier(ModelSpec(**{"arch": "mobilenetv2", "input_size": 32, "channels": 1, **spec}))


def _weighted(model):
    return [layer for layer in backbone_layers(model) if layer.weights]


@pytest.fixture(scope="module")
def source():
    model = _model(1)
    bn = model.get_layer("bn_Conv1")  # non-trainable statistics travel too
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 0.25, np.float32))
    return model


def _assert_backbone_equal(a, b):
    for la, lb in zip(_weighted(a), _weighted(b)):
        for wa, wb in zip(la.get_weights(), lb.get_weights()):
            np.testing.assert_array_equal(wa, wb)


def test_backbone_file_round_trip_loads_every_backbone_weight_and_no_head(source, tmp_path):
    path = tmp_path / "backbone.npz"
    arrays = export_backbone_weights(source, path)
    target = _model(2, channels=3, num_classes=4, input_size=48)  # other data channels, classes and size
    head_before = target.get_layer("cam").get_weights()
    loaded = load_backbone_weights(target, path)
    assert isinstance(loaded, LoadedWeights)
    assert (loaded.kind, loaded.arch, loaded.source_channels) == ("backbone", "mobilenetv2", 1)
    assert loaded.layers == len(_weighted(target)) and loaded.arrays == arrays
    assert loaded.parameters == sum(w.size for layer in _weighted(source) for w in layer.get_weights())
    _assert_backbone_equal(source, target)
    for before, after in zip(head_before, target.get_layer("cam").get_weights()):
        np.testing.assert_array_equal(before, after)
    with np.load(path) as archive:  # a plain, pickle-free numpy file keyed by layer name
        header = json.loads(str(archive["__medtk__"]))
        assert header["format"] == "medtk-backbone/1" and header["layers"][0] == "Conv1"
        assert "Conv1/0" in archive.files and not any(k.startswith("cam/") for k in archive.files)


def test_run_folder_transfers_and_features_match(source, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    source.save(run / "model.keras")
    target = _model(3)
    loaded = load_backbone_weights(target, run)
    assert loaded.kind == "run" and loaded.source.endswith("model.keras")
    _assert_backbone_equal(source, target)
    k = keras()
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1)).astype(np.float32)
    features = [k.Model(m.input, m.get_layer("out_relu").output)(pixels, training=False).numpy()
                for m in (source, target)]
    np.testing.assert_allclose(features[0], features[1], rtol=1e-6)


def test_other_architecture_is_refused_with_one_line_and_nothing_loaded(source, tmp_path):
    path = tmp_path / "backbone.npz"
    export_backbone_weights(source, path)
    keras().utils.set_random_seed(4)
    resnet = build_classifier(ModelSpec(arch="resnet50", input_size=32, channels=1))
    before = resnet.get_layer("conv1_conv").get_weights()[0].copy()
    message = "architecture mismatch: a mobilenetv2 backbone cannot initialise this resnet50 model"
    with pytest.raises(ConfigError, match=message) as error:
        load_backbone_weights(resnet, path)
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(resnet.get_layer("conv1_conv").get_weights()[0], before)


def test_shape_and_channel_mismatches_are_refused(source, tmp_path):
    path = tmp_path / "backbone.npz"
    export_backbone_weights(source, path)
    target = _model(5)
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["Conv1/0"] = np.zeros((3, 3, 1, 32), np.float32)  # a backbone that takes one input channel
    np.savez(tmp_path / "gray.npz", **arrays)
    with pytest.raises(ConfigError, match="its backbone takes 1 input channels, this model's 3"):
        load_backbone_weights(target, tmp_path / "gray.npz")
    arrays["Conv1/0"] = np.zeros((3, 3, 3, 32), np.float32)
    arrays["block_1_expand/0"] = np.zeros((1, 1, 16, 8), np.float32)
    np.savez(tmp_path / "narrow.npz", **arrays)
    with pytest.raises(ConfigError, match="layer 'block_1_expand' has shapes"):
        load_backbone_weights(target, tmp_path / "narrow.npz")
    header = json.loads(str(arrays.pop("__medtk__")))
    header["layers"].remove("Conv_1_bn")
    kept = {key: value for key, value in arrays.items() if not key.startswith("Conv_1_bn/")}
    np.savez(tmp_path / "short.npz", __medtk__=np.array(json.dumps(header)), **kept)
    with pytest.raises(ConfigError, match=r"the source backbone lacks 1 layer\(s\) of this model \(Conv_1_bn\)"):
        load_backbone_weights(target, tmp_path / "short.npz")


def test_resolve_weights_tells_the_forms_apart(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes(b"")
    (tmp_path / "b.npz").write_bytes(b"")
    (tmp_path / "resnet50_notop.h5").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert resolve_weights("none") == WeightsSource("none")
    assert resolve_weights("imagenet") == WeightsSource("imagenet")
    assert resolve_weights(str(tmp_path / "run")) == WeightsSource("run", tmp_path / "run" / "model.keras")
    assert resolve_weights(str(tmp_path / "b.npz")) == WeightsSource("backbone", tmp_path / "b.npz")
    assert resolve_weights(str(tmp_path / "resnet50_notop.h5")).kind == "keras"
    with pytest.raises(ConfigError, match=r"no such file or folder \(valid: none, imagenet, a medtk run folder"):
        resolve_weights(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="a folder without model.keras, not a medtk run"):
        resolve_weights(str(tmp_path / "empty"))


def test_unreadable_sources_are_clear_errors(source, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a medtk backbone weights file"):
        load_backbone_weights(source, tmp_path / "bad.npz")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(ConfigError, match="is keras, not a medtk run or backbone file"):
        load_backbone_weights(source, tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="must end in .npz"):
        export_backbone_weights(source, tmp_path / "weights.h5")
