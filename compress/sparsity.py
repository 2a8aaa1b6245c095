"""Which kernels medtk prunes, and how sparse they are: one definition for pruning, QAT and the report.

Pruned: every `Conv2D` and `Dense` kernel except the classifier (`cam`, the 1x1 convolution of the
head). The classifier holds K x C weights (4k of ResNet50's 23M), so pruning it saves nothing, while
each of its weights moves a class logit directly. Depthwise kernels are left dense too: TFMOT's
prune-preserving QAT disables sparsity preservation for `DepthwiseConv2D`, so zeros there would not
survive QAT anyway.
"""

from __future__ import annotations

from medtk.train.tfenv import keras

KEEP_DENSE = ("cam",)


def unwrap(layer):
    """The Keras layer inside a pruning or quantization wrapper (the layer itself otherwise)."""
    while hasattr(layer, "layer") and not hasattr(layer, "layers"):
        layer = layer.layer
    return layer


def is_prunable(layer) -> bool:
    k = keras()
    inner = unwrap(layer)
    return type(inner) in (k.layers.Conv2D, k.layers.Dense) and inner.name not in KEEP_DENSE


def kernel_sparsity(model) -> float:
    """Fraction of exact zeros over the prunable kernels (conv/dense, see above) of `model`."""
    zeros = total = 0
    for layer in model.layers:
        if is_prunable(layer):
            kernel = _kernel(layer)
            zeros += int((kernel == 0).sum())
            total += kernel.size
    return zeros / total if total else 0.0


def _kernel(layer):
    """The kernel variable's values; a QAT wrapper replaces the `kernel` attribute by its fake-quant tensor."""
    for weight in layer.weights:
        if weight.name.rsplit("/", 1)[-1].startswith("kernel"):
            return weight.numpy()
    raise ValueError(f"layer {layer.name} has no kernel variable")
