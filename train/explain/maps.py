"""Explanations on the workstation (TensorFlow): CAM, Grad-CAM, Grad-CAM++ and feature maps of any layer.

- `cam`: the model's own `cam` output (the classifier per cell, exact; what the device returns).
- `gradcam` (Selvaraju et al. 2017): channel weights = the spatial mean of d logit_c / d A over the
  chosen layer's activations A; map = ReLU(sum_k w_k A_k). At the backbone's last feature map it
  equals the CAM minus its bias (a GAP -> linear head); on an earlier layer (e.g. `conv4_block6_out`
  of ResNet50, stride 16) it has twice the CAM's resolution.
- `gradcam++` (Chattopadhay et al. 2018), closed form for an exponential of the logit:
  alpha = g^2 / (2 g^2 + sum_ab A * g^3), w_k = sum_ab alpha * ReLU(g); map = ReLU(sum_k w_k A_k).

The target is the class logit (the `gap` output, before softmax), so a confident prediction does not
flatten the gradients. Maps are raw (h, w) arrays; `medtk.runtime.cam.class_map` turns any of them
into the [0, 1] map at the image's size, exactly as the device shows a CAM.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medtk.errors import ConfigError
from medtk.train.tfenv import keras, tensorflow

METHODS = ("cam", "gradcam", "gradcam++")
CAM_LAYER = "cam"
LOGITS_LAYER = "gap"
_NOT_EXPLAINABLE = {"pixels", "preprocess"}


@dataclass(frozen=True)
class Explanation:
    method: str
    layer: str
    class_indices: np.ndarray  # (N,) the class explained per image
    maps: np.ndarray  # (N, h, w) raw maps (CAM logits, or non-negative Grad-CAM heat)


@dataclass(frozen=True)
class FeatureMaps:
    layer: str
    channels: np.ndarray  # (N, top) channel indices, strongest (largest mean activation) first
    maps: np.ndarray  # (N, h, w, top) the activations of those channels


def explainable_layers(model) -> list[str]:
    """Layers with a spatial (4-D) output, in graph order: what Grad-CAM and feature maps accept."""
    return [layer.name for layer in model.layers
            if layer.name not in _NOT_EXPLAINABLE and _is_spatial(layer)]


def _is_spatial(layer) -> bool:
    shape = layer.output_shape
    return isinstance(shape, tuple) and len(shape) == 4


def check_layer(model, name: str, option: str = "--layer") -> str:
    """`name` if it is an explainable layer of `model`, else a ConfigError listing close matches."""
    names = explainable_layers(model)
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else f"; e.g. {', '.join(names[-3:])}"
    raise ConfigError(f"{option} {name!r} is not a layer with a spatial output in {model.name}{hint}")


def finer_layer(model) -> str:
    """The default Grad-CAM layer: the stage before the last (ResNet50 `conv4_block6_out`), which
    has twice the CAM's resolution at output stride 32; the last feature map if the backbone is unknown."""
    from medtk.train.backbones import available_backbones, get_backbone

    arch = model.name.removeprefix("medtk_")
    if arch in available_backbones():
        name = get_backbone(arch).finer_layer
        if name is not None and name in explainable_layers(model):
            return name
    return last_feature_layer(model)


def last_feature_layer(model) -> str:
    """The backbone's output (the feature map the CAM head reads)."""
    return model.get_layer("head_dropout").input._keras_history.layer.name


def explain(model, batch: np.ndarray, method: str = "cam", layer: str | None = None,
            class_index: int | Sequence[int] | None = None) -> Explanation:
    """Maps for a batch of prepared images ((N, S, S, C) raw 0..255, as `prepare_input` returns).

    `class_index`: the class to explain (one for all, or one per image); None = the predicted class.
    """
    if method not in METHODS:
        close = difflib.get_close_matches(method, METHODS, n=1)
        raise ConfigError(f"--method {method!r} is not known" + (f"; did you mean {close[0]}?" if close else "")
                          + f" (choose from {', '.join(METHODS)})")
    if method == "cam":
        if layer not in (None, CAM_LAYER):
            raise ConfigError(f"--layer {layer!r} does not apply to --method cam (the CAM is the model's own "
                              "`cam` output); use --method gradcam or gradcam++ to explain another layer")
        return _cam(model, batch, class_index)
    layer = check_layer(model, layer) if layer is not None else finer_layer(model)
    return _gradcam(model, batch, method, layer, class_index)


def _classes(logits: np.ndarray, class_index) -> np.ndarray:
    count, classes = logits.shape
    if class_index is None:
        return logits.argmax(axis=1).astype(np.int64)
    chosen = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (count,)).copy()
    if (chosen < 0).any() or (chosen >= classes).any():
        raise ConfigError(f"class index {class_index!r} is outside the model's {classes} classes")
    return chosen


def _cam(model, batch: np.ndarray, class_index) -> Explanation:
    _, cams = model(np.asarray(batch, dtype=np.float32), training=False)
    cams = np.asarray(cams)
    classes = _classes(cams.mean(axis=(1, 2)), class_index)
    maps = cams[np.arange(len(cams)), :, :, classes]
    return Explanation(method="cam", layer=CAM_LAYER, class_indices=classes, maps=maps.astype(np.float32))


def _gradcam(model, batch: np.ndarray, method: str, layer: str, class_index) -> Explanation:
    tf, k = tensorflow(), keras()
    probe = k.Model(model.input, [model.get_layer(layer).output, model.get_layer(LOGITS_LAYER).output])
    pixels = tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
    with tf.GradientTape() as tape:
        activations, logits = probe(pixels, training=False)
        classes = _classes(logits.numpy(), class_index)
        target = tf.gather(logits, classes, axis=1, batch_dims=1)
    grads = tape.gradient(target, activations).numpy().astype(np.float64)
    acts = activations.numpy().astype(np.float64)
    if method == "gradcam":
        weights = grads.mean(axis=(1, 2))
    else:
        g2, g3 = grads**2, grads**3
        denominator = 2.0 * g2 + acts.sum(axis=(1, 2), keepdims=True) * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=np.abs(denominator) > 1e-12)
        weights = (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2))
    maps = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0.0)
    return Explanation(method=method, layer=layer, class_indices=classes, maps=maps.astype(np.float32))


def feature_maps(model, batch: np.ndarray, layer: str, top: int = 16) -> FeatureMaps:
    """The `top` channels of `layer` with the largest mean activation, per image."""
    k = keras()
    layer = check_layer(model, layer, option="--features")
    probe = k.Model(model.input, model.get_layer(layer).output)
    acts = np.asarray(probe(np.asarray(batch, dtype=np.float32), training=False), dtype=np.float32)
    top = max(1, min(int(top), acts.shape[-1]))
    order = np.argsort(-acts.mean(axis=(1, 2)), axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(acts, order[:, None, None, :], axis=3)
    return FeatureMaps(layer=layer, channels=order, maps=chosen)
