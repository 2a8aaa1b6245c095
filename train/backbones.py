"""Backbones by name: one registry, thin entries, helpful misses.

Each entry builds a Keras application on an existing tensor (`include_top=False, input_tensor=...`)
so the classifier stays one flat functional graph, which is what TFMOT needs to prune and quantize
it layer by layer. Adding a backbone is one decorated function.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from medtk.errors import ConfigError


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[..., Any]  # (input_tensor, weights) -> keras.Model
    preprocessing: str  # the Keras application's input convention: "caffe", "tf" or "torch"
    fine_tune_at: str  # first layer unfrozen in phase two when fine-tuning pretrained weights
    min_input_size: int = 32


_REGISTRY: dict[str, Backbone] = {}


def register_backbone(name: str, *, preprocessing: str, fine_tune_at: str, min_input_size: int = 32):
    def decorator(build: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = Backbone(
            name=name,
            build=build,
            preprocessing=preprocessing,
            fine_tune_at=fine_tune_at,
            min_input_size=min_input_size,
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


@register_backbone("resnet50", preprocessing="caffe", fine_tune_at="conv5_block1_1_conv")
def _resnet50(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.ResNet50(include_top=False, weights=weights, input_tensor=input_tensor)


@register_backbone("resnet101", preprocessing="caffe", fine_tune_at="conv5_block1_1_conv")
def _resnet101(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.ResNet101(include_top=False, weights=weights, input_tensor=input_tensor)


@register_backbone("mobilenetv2", preprocessing="tf", fine_tune_at="block_13_expand")
def _mobilenet_v2(input_tensor, weights):
    from medtk.train.tfenv import keras

    return keras().applications.MobileNetV2(include_top=False, weights=weights, input_tensor=input_tensor)
