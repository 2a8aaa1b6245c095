"""Backbones by name: one registry, thin entries, helpful misses.

Each entry builds a Keras application on an existing tensor (`include_top=False, input_tensor=...`)
so the classifier stays one flat functional graph, which is what TFMOT needs to prune and quantize
it layer by layer. Adding a backbone is one decorated function.

Output stride 16 (a finer CAM: 14 x 14 at 224 px instead of 7 x 7) is the segmentation backbones'
trick: the last stage keeps its input resolution (its stride-2 layers become stride 1) and its 3x3
(depthwise) convolutions are dilated by 2, so each layer still sees what it saw at stride 32. Only
strides and dilation rates change, never a kernel shape, so ImageNet and run weights load unchanged.
A backbone supports it by naming a `dilate_last_stage` rewrite of one layer's Keras config.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from medtk.errors import ConfigError

LayerRewrite = Callable[[dict[str, Any]], dict[str, Any]]  # a layer's Keras config -> the stride-16 config


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[..., Any]  # (input_tensor, weights) -> keras.Model
    preprocessing: str  # the Keras application's input convention: "caffe", "tf" or "torch"
    fine_tune_at: str  # first layer unfrozen in phase two when fine-tuning pretrained weights
    min_input_size: int = 32
    # The output of the stage before the last (stride 16 at output stride 32): Grad-CAM there has twice
    # the CAM's resolution.
    finer_layer: str | None = None
    dilate_last_stage: LayerRewrite | None = None  # None: output stride 32 only

    @property
    def output_strides(self) -> tuple[int, ...]:
        return (32, 16) if self.dilate_last_stage is not None else (32,)


_REGISTRY: dict[str, Backbone] = {}


def register_backbone(name: str, *, preprocessing: str, fine_tune_at: str, min_input_size: int = 32,
                      finer_layer: str | None = None, dilate_last_stage: LayerRewrite | None = None):
    def decorator(build: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = Backbone(
            name=name,
            build=build,
            preprocessing=preprocessing,
            fine_tune_at=fine_tune_at,
            min_input_size=min_input_size,
            finer_layer=finer_layer,
            dilate_last_stage=dilate_last_stage,
        )
        return build

    return decorator


def get_backbone(name: str) -> Backbone:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown architecture {name!r}{hint} (available: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def available_backbones() -> list[str]:
    return sorted(_REGISTRY)


def check_output_stride(backbone: Backbone, output_stride: int) -> None:
    if output_stride not in (16, 32):
        raise ConfigError(f"output_stride = {output_stride!r} is not valid; expected 32 (the backbone as published) "
                          "or 16 (last stage dilated: a 2x finer CAM)")
    if output_stride not in backbone.output_strides:
        able = [name for name, entry in sorted(_REGISTRY.items()) if output_stride in entry.output_strides]
        raise ConfigError(f"output_stride = {output_stride} is not available for {backbone.name} "
                          f"(supported by: {', '.join(able)}); use output_stride = 32 with {backbone.name}")


def _resnet_dilate_conv5(config: dict[str, Any]) -> dict[str, Any]:
    """ResNet v1: conv5_block1's two stride-2 1x1 convs (shortcut and first) become stride 1; every
    conv5 3x3 conv gets dilation 2."""
    name = config["name"]
    if name in ("conv5_block1_0_conv", "conv5_block1_1_conv"):
        return {**config, "strides": (1, 1)}
    if name.startswith("conv5_") and name.endswith("_2_conv"):
        return {**config, "dilation_rate": (2, 2)}
    return config


def _mobilenet_v2_dilate_block13(config: dict[str, Any]) -> dict[str, Any]:
    """MobileNetV2: block 13's stride-2 depthwise conv (after a (0, 1) pad) becomes stride 1 after a
    symmetric (1, 1) pad; the depthwise convs of blocks 14-16 get dilation 2."""
    name = config["name"]
    if name == "block_13_pad":
        return {**config, "padding": ((1, 1), (1, 1))}
    if name == "block_13_depthwise":
        return {**config, "strides": (1, 1)}
    if name in ("block_14_depthwise", "block_15_depthwise", "block_16_depthwise"):
        return {**config, "dilation_rate": (2, 2)}
    return config


@register_backbone("resnet50", preprocessing="caffe", fine_tune_at="conv5_block1_1_conv",
                   finer_layer="conv4_block6_out", dilate_last_stage=_resnet_dilate_conv5)
def _resnet50(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.ResNet50(include_top=False, weights=weights, input_tensor=input_tensor)


@register_backbone("resnet101", preprocessing="caffe", fine_tune_at="conv5_block1_1_conv",
                   finer_layer="conv4_block23_out", dilate_last_stage=_resnet_dilate_conv5)
def _resnet101(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.ResNet101(include_top=False, weights=weights, input_tensor=input_tensor)


@register_backbone("mobilenetv2", preprocessing="tf", fine_tune_at="block_13_expand",
                   finer_layer="block_12_add", dilate_last_stage=_mobilenet_v2_dilate_block13)
def _mobilenet_v2(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.MobileNetV2(include_top=False, weights=weights, input_tensor=input_tensor)
