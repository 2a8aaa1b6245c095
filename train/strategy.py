"""Where training runs: distribution strategy, mixed precision and XLA, decided once from the hardware.

- several GPUs -> MirroredStrategy; `TF_CONFIG` set -> MultiWorkerMirroredStrategy; else the default.
- a GPU -> mixed float16 (the softmax stays float32 in the graph) and XLA; on the CPU both are off
  by default because they slow it down. Every choice can be forced from the config.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from medtk.errors import ConfigError
from medtk.train.tfenv import keras, tensorflow


@dataclass(frozen=True)
class Placement:
    strategy: object
    strategy_name: str
    replicas: int
    devices: tuple[str, ...]
    mixed_precision: bool
    xla: bool

    def describe(self) -> dict:
        return {
            "strategy": self.strategy_name,
            "replicas": self.replicas,
            "devices": list(self.devices),
            "mixed_precision": self.mixed_precision,
            "xla": self.xla,
        }


def choose_placement(strategy: str = "auto", mixed_precision: str = "auto", xla: str = "auto") -> Placement:
    tf = tensorflow()
    gpus = tf.config.list_logical_devices("GPU")
    name = _strategy_name(strategy, len(gpus))
    if name == "multiworker":
        chosen = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        chosen = tf.distribute.MirroredStrategy(devices=devices)
    else:
        chosen = tf.distribute.get_strategy()
    use_mixed = _switch(mixed_precision, bool(gpus), "mixed_precision")
    keras().mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    devices = tuple(chosen.extended.worker_devices) if name != "default" else (_default_device(tf, gpus),)
    return Placement(
        strategy=chosen,
        strategy_name=name,
        replicas=int(chosen.num_replicas_in_sync),
        devices=devices,
        mixed_precision=use_mixed,
        xla=_switch(xla, bool(gpus), "xla"),
    )


def _default_device(tf, gpus) -> str:
    return gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name


def _strategy_name(strategy: str, gpu_count: int) -> str:
    valid = ("auto", "default", "mirrored", "multiworker")
    if strategy not in valid:
        raise ConfigError(f"train.strategy {strategy!r} is not one of {', '.join(valid)}")
    if strategy != "auto":
        return strategy
    if _tf_config_has_workers():
        return "multiworker"
    return "mirrored" if gpu_count > 1 else "default"


def _tf_config_has_workers() -> bool:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {raw[:80]!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def _switch(value: str, has_gpu: bool, key: str) -> bool:
    if value not in ("auto", "on", "off"):
        raise ConfigError(f"train.{key} {value!r} is not one of auto, on, off")
    return has_gpu if value == "auto" else value == "on"
