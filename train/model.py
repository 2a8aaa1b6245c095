"""The medtk classifier graph: raw pixels in, `probs` and `cam` out, one flat functional model.

    pixels (0..255, S x S x C) -> preprocess (gray->3 channels, backbone normalization)
      -> backbone (flat: include_top=False, input_tensor=...) -> SpatialDropout2D
      -> cam: Conv2D 1x1, K filters (the classifier) -> GlobalAveragePooling2D -> softmax = probs

The head is the usual GAP -> Dropout -> Dense written the other way round: a 1x1 convolution over the
feature map followed by global average pooling computes exactly Dense(GAP(features)), because both are
linear. So the class activation maps *are* the classifier's logits per cell (mean over the map = the
logits), are exact by construction, need no weight copying at export, and prune and quantize with the
rest of the graph. SpatialDropout2D drops whole channels, which is Dropout on the pooled features.

`output_stride=16` dilates the backbone's last stage (train/backbones.py): the CAM grid doubles (14 x 14
at 224 px) with the same weights; the graph is the stride-32 one with other strides and dilation rates,
rebuilt layer by layer (`clone_model`), so it stays flat for TFMOT and converts with builtin ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medtk.config import ModelConfig
from medtk.errors import ConfigError, ModelError
from medtk.train.backbones import check_output_stride, get_backbone
from medtk.train.tfenv import keras, tensorflow

INPUT_NAME = "pixels"
PREPROCESS_NAME = "preprocess"
HEAD_LAYERS = ("head_dropout", "cam", "gap", "probs")
OUTPUT_NAMES = ("probs", "cam")

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """The graph `build_classifier` builds. Its defaults are the run configuration's (`medtk.config.ModelConfig`,
    where each is written and explained once); `channels` and `num_classes` are resolved from the data."""

    arch: str = ModelConfig.arch
    input_size: int = ModelConfig.input_size
    channels: int = 1  # 1 or 3 (ModelConfig's 0, "from the data", is resolved before a spec is made)
    num_classes: int = 2
    dropout: float = ModelConfig.dropout
    weights: str = ModelConfig.weights  # "none", "imagenet" or a Keras weights file (run folders load after the build)
    batchnorm_momentum: float = ModelConfig.batchnorm_momentum
    output_stride: int = ModelConfig.output_stride


def _pixel_preprocess_class():
    """Defined lazily so importing this module does not import TensorFlow."""
    tf = tensorflow()
    k = keras()

    @k.utils.register_keras_serializable(package="medtk")
    class PixelPreprocess(k.layers.Layer):
        """Raw 0..255 pixels -> the backbone's expected input; gray is copied to three channels.

        A plain layer (not a Lambda) so the model saves and loads, and QAT can leave it unannotated.
        """

        def __init__(self, mode: str = "caffe", **kwargs):
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, inputs):
            x = tf.cast(inputs, tf.float32)
            if x.shape[-1] == 1:
                x = tf.concat([x, x, x], axis=-1)
            if self.mode == "caffe":
                return x[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR, dtype=tf.float32)
            if self.mode == "tf":
                return x / 127.5 - 1.0
            if self.mode == "torch":
                return (x / 255.0 - tf.constant(_TORCH_MEAN)) / tf.constant(_TORCH_STD)
            raise ValueError(f"unknown preprocessing mode {self.mode!r}")

        def get_config(self):
            return {**super().get_config(), "mode": self.mode}

    return PixelPreprocess


_PIXEL_PREPROCESS = None


def pixel_preprocess_layer():
    global _PIXEL_PREPROCESS
    if _PIXEL_PREPROCESS is None:
        _PIXEL_PREPROCESS = _pixel_preprocess_class()
    return _PIXEL_PREPROCESS


def custom_objects() -> dict[str, Any]:
    """What `load_model` needs to rebuild a medtk model (also used by TFMOT's scopes)."""
    return {"PixelPreprocess": pixel_preprocess_layer()}


def build_classifier(spec: ModelSpec):
    """Build the two-output medtk model (outputs `probs`, `cam`) described at the top of this module."""
    k = keras()
    backbone = get_backbone(spec.arch)
    if spec.input_size < backbone.min_input_size:
        raise ConfigError(f"--input-size {spec.input_size} is below {spec.arch}'s minimum of {backbone.min_input_size}")
    if spec.channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {spec.channels}")
    if not 0.0 <= spec.batchnorm_momentum < 1.0:
        raise ConfigError(f"batchnorm_momentum must be in [0, 1), got {spec.batchnorm_momentum}")
    if spec.num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {spec.num_classes}")
    check_output_stride(backbone, spec.output_stride)
    pixels = k.Input(shape=(spec.input_size, spec.input_size, spec.channels), name=INPUT_NAME, dtype="float32")
    normalized = pixel_preprocess_layer()(mode=backbone.preprocessing, name=PREPROCESS_NAME)(pixels)
    backbone_model = _build_backbone(backbone, normalized, spec.weights)
    if spec.batchnorm_momentum:
        _set_batchnorm_momentum(backbone_model, spec.batchnorm_momentum)
    features = backbone_model.output
    dropped = k.layers.SpatialDropout2D(spec.dropout, name="head_dropout")(features)
    cam = k.layers.Conv2D(spec.num_classes, 1, name="cam")(dropped)
    logits = k.layers.GlobalAveragePooling2D(name="gap")(cam)
    probs = k.layers.Activation("softmax", dtype="float32", name="probs")(logits)
    model = k.Model(pixels, [probs, cam], name=f"medtk_{spec.arch}")
    if spec.output_stride != 32:
        model = _dilated_copy(model, backbone.dilate_last_stage)
    return model


def _dilated_copy(model, rewrite):
    """The same graph with the last stage's strides and dilation rates rewritten, weights copied.

    No kernel changes shape, so the weights (ImageNet or a file, already loaded) carry over in order.
    """
    k = keras()

    def clone(layer):
        return layer.__class__.from_config(rewrite(layer.get_config()))

    dilated = k.models.clone_model(model, clone_function=clone)
    dilated.set_weights(model.get_weights())
    return dilated


def cam_grid(model) -> tuple[int, int]:
    """(h, w) of the model's CAM: input size / output stride."""
    shape = model.get_layer("cam").output_shape
    return int(shape[1]), int(shape[2])


def _set_batchnorm_momentum(backbone_model, momentum: float) -> None:
    """Keras applications use 0.99-0.999, tuned for long ImageNet schedules. In a short run from scratch
    the moving statistics then lag the weights and inference drifts from training (benchmarks/RESULTS.md,
    "Notes moved from code"). 0.9 is PyTorch's default."""
    k = keras()
    for layer in backbone_model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = momentum


def _build_backbone(backbone, normalized, weights: str):
    if weights in ("none", "", None):
        return backbone.build(normalized, None)
    if weights == "imagenet":
        try:
            return backbone.build(normalized, "imagenet")
        except Exception as error:  # urllib/HTTP errors differ by platform; the cause matters, not the type
            raise ModelError(
                f"could not load ImageNet weights for {backbone.name} ({type(error).__name__}: {error}); "
                "without network access put the Keras '*_notop.h5' file in ~/.keras/models/ "
                "or pass --weights none or --weights FILE"
            ) from None
    from pathlib import Path

    if not Path(weights).is_file():
        raise ModelError(f"--weights {weights}: no such file (expected none, imagenet or a weights file)")
    try:
        return backbone.build(normalized, weights)
    except Exception as error:
        raise ModelError(f"--weights {weights}: cannot load into {backbone.name} ({error})") from None


def training_view(model):
    """The single-output model Keras fits (loss on `probs`); it shares every layer with `model`."""
    k = keras()
    return k.Model(model.input, model.get_layer("probs").output, name=model.name + "_train")


def backbone_layers(model) -> list:
    """Layers between the preprocessing and the head, in graph order."""
    skip = {INPUT_NAME, PREPROCESS_NAME, *HEAD_LAYERS}
    return [layer for layer in model.layers if layer.name not in skip]


def set_trainable_from(model, fine_tune_at: str | int | None, freeze_batchnorm: bool = True) -> int:
    """Freeze the backbone before `fine_tune_at` (None = freeze all).

    With pretrained weights BatchNorm stays frozen: frozen BatchNorm runs in inference mode in Keras 2,
    so small medical batches never overwrite the pretrained statistics. From scratch it must train.
    Returns the number of trainable backbone layers that hold weights.
    """
    k = keras()
    layers = backbone_layers(model)
    start = len(layers) if fine_tune_at is None else _layer_index(layers, fine_tune_at)
    trainable = 0
    for index, layer in enumerate(layers):
        frozen_norm = freeze_batchnorm and isinstance(layer, k.layers.BatchNormalization)
        layer.trainable = index >= start and not frozen_norm
        trainable += int(layer.trainable and bool(layer.weights))
    return trainable


def _layer_index(layers: list, fine_tune_at: str | int) -> int:
    if isinstance(fine_tune_at, int) or str(fine_tune_at).lstrip("-").isdigit():
        index = int(fine_tune_at)
        if not -len(layers) <= index <= len(layers):
            raise ConfigError(f"--fine-tune-at {index} is outside the backbone's {len(layers)} layers")
        return index % len(layers) if index < 0 else index
    names = [layer.name for layer in layers]
    if fine_tune_at not in names:
        import difflib

        close = difflib.get_close_matches(str(fine_tune_at), names, n=3)
        raise ConfigError(f"--fine-tune-at {fine_tune_at!r} is not a backbone layer; close: {', '.join(close) or 'none'}")
    return names.index(fine_tune_at)


def load_classifier(path) -> Any:
    """Load a saved medtk model, refusing files that are not one."""
    from pathlib import Path

    k = keras()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no trained model here (run `medtk train` first)")
    try:
        model = k.models.load_model(path, custom_objects=custom_objects(), compile=False)
    except Exception as error:
        raise ModelError(f"{path}: cannot load as a Keras model ({type(error).__name__}: {error})") from None
    if list(model.output_names) != list(OUTPUT_NAMES):
        raise ModelError(f"{path}: not a medtk model (outputs {model.output_names}, expected {list(OUTPUT_NAMES)})")
    return model
