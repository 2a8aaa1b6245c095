"""Where training runs: distribution strategy, mixed precision and XLA, decided once from the hardware.

- several GPUs -> MirroredStrategy; `TF_CONFIG` set -> MultiWorkerMirroredStrategy; else the default.
- a GPU -> mixed float16 (the softmax stays float32 in the graph) and XLA; on the CPU both are off by
  default. bfloat16 (`mixed_precision = "bfloat16"`) is opt-in: it speeds up CPUs with AVX512-BF16 or
  AMX and TPUs. Every choice can be forced from the config.
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
    mixed_precision: str  # the Keras dtype policy: float32, mixed_float16 or mixed_bfloat16
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
    if _wants_multiworker(strategy):
        # MultiWorkerMirroredStrategy configures TensorFlow's collective ops, which is refused once the
        # runtime has started ("must be configured at program startup"): it comes before listing devices.
        name, chosen = "multiworker", tf.distribute.MultiWorkerMirroredStrategy()
        gpus = tf.config.list_logical_devices("GPU")
    else:
        gpus = tf.config.list_logical_devices("GPU")
        name = "mirrored" if strategy == "mirrored" or (strategy == "auto" and len(gpus) > 1) else "default"
        if name == "mirrored":
            devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
            chosen = tf.distribute.MirroredStrategy(devices=devices)
        else:
            chosen = tf.distribute.get_strategy()
    policy = _precision_policy(mixed_precision, bool(gpus))
    keras().mixed_precision.set_global_policy(policy)
    devices = tuple(chosen.extended.worker_devices) if name != "default" else (_default_device(tf, gpus),)
    return Placement(
        strategy=chosen,
        strategy_name=name,
        replicas=int(chosen.num_replicas_in_sync),
        devices=devices,
        mixed_precision=policy,
        xla=_switch(xla, bool(gpus), "xla"),
    )


def _default_device(tf, gpus) -> str:
    return gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name


def _wants_multiworker(strategy: str) -> bool:
    valid = ("auto", "default", "mirrored", "multiworker")
    if strategy not in valid:
        raise ConfigError(f"train.strategy {strategy!r} is not one of {', '.join(valid)}")
    return strategy == "multiworker" or (strategy == "auto" and _tf_config_has_workers())


def worker_count() -> int:
    """Workers in the TF_CONFIG cluster (chief included); 1 without one."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 1
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {raw[:80]!r}") from None
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def _tf_config_has_workers() -> bool:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {raw[:80]!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def _precision_policy(value: str, has_gpu: bool) -> str:
    """auto: float16 compute on a GPU, float32 on the CPU; bfloat16 pays off on CPUs with AVX512-BF16/AMX."""
    policies = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
    if value == "auto":
        return "mixed_float16" if has_gpu else "float32"
    if value not in policies:
        raise ConfigError(f"train.mixed_precision {value!r} is not one of auto, off, float16, bfloat16")
    return policies[value]


def _switch(value: str, has_gpu: bool, key: str) -> bool:
    if value not in ("auto", "on", "off"):
        raise ConfigError(f"train.{key} {value!r} is not one of auto, on, off")
    return has_gpu if value == "auto" else value == "on"
