"""Quantization-aware training (optionally pruning-preserving) of a medtk model.

Every layer is annotated except the input and `PixelPreprocess`: the preprocessing is a custom
layer with no weights whose float maths (gray->RGB, mean subtraction) must stay as trained; the
converter quantizes its output from the calibration images like any other activation.

Two TFMOT traps, both handled here:

- `Default8BitPrunePreserveQuantizeRegistry.supports()` answers True for *any* layer without
  trainable weights, so `quantize_apply` tries to give the unannotated `PixelPreprocess` an
  output-quantize config and fails with "get_quantize_config() called on an unsupported layer".
  `_FloatAwareRegistry` answers False for the layers left float, which is what the default 8-bit
  registry answers, and `quantize_apply` then leaves them alone.
- `quantize_apply` renames every layer `quant_<name>`, which would rename the model's outputs
  (the converter names the signature outputs after them). The prefix is set to "" so the outputs
  stay `probs` and `cam`.

SpatialDropout2D, GlobalAveragePooling2D and the softmax `Activation` are in the default 8-bit
registry (checked on TFMOT 0.8.1), so they need no custom `QuantizeConfig`.
"""

from __future__ import annotations

import logging

from medtk.compress.finetune import Distillation, TrainingData, fine_tune, make_trainable
from medtk.train.model import INPUT_NAME, PREPROCESS_NAME, custom_objects
from medtk.train.tfenv import keras, tfmot

log = logging.getLogger(__name__)
FLOAT_LAYERS = (INPUT_NAME, PREPROCESS_NAME)


def _scheme(prune_preserve: bool):
    mot = tfmot()
    if not prune_preserve:
        return mot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as registry,
    )

    class _FloatAwareRegistry(registry.Default8bitPrunePreserveQuantizeRegistry):
        def supports(self, layer):
            return layer.name not in FLOAT_LAYERS and super().supports(layer)

    class _Scheme(mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme):
        def get_quantize_registry(self):
            return _FloatAwareRegistry()

    return _Scheme()


def quantize_model(model, prune_preserve: bool):
    """The QAT model of `model`: fake-quant everywhere but the input and preprocessing."""
    k, mot = keras(), tfmot()
    make_trainable(model)

    def annotate(layer):
        return layer if layer.name in FLOAT_LAYERS else mot.quantization.keras.quantize_annotate_layer(layer)

    with mot.quantization.keras.quantize_scope(custom_objects()):
        annotated = k.models.clone_model(model, clone_function=annotate)
        return mot.quantization.keras.quantize_apply(
            annotated, _scheme(prune_preserve), quantized_layer_name_prefix=""
        )


def quantization_aware_training(
    model, data: TrainingData, *, prune_preserve: bool, epochs: int, learning_rate: float, batch_size: int,
    distillation: Distillation | None = None,
):
    """Quantize-annotate `model`, then fine-tune it so the weights adapt to 8-bit rounding (`distillation`:
    against the float model's probabilities and CAMs too)."""
    log.info("quantization-aware training%s: %d epochs", " (sparsity preserving)" if prune_preserve else "", epochs)
    quantized = quantize_model(model, prune_preserve)
    if epochs > 0:
        fine_tune(
            quantized, data, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, stage="qat",
            distillation=distillation,
        )
    return quantized
