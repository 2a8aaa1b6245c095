"""Typed run configuration: dataclasses hold the defaults, spec files and CLI flags only override them.

A spec file is TOML with one section per stage (`[data]`, `[model]`, `[augment]`, `[train]`); unknown
sections or keys are an error with a suggestion, values are checked against the field's type and never
evaluated. The resolved configuration is saved in the run folder so a run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from medtk.errors import ConfigError


@dataclass
class DataConfig:
    src: str = "synthetic"
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_bad_fraction: float = 0.05
    subset: int = 0  # at most this many images per split (0 = all): quick smoke runs


@dataclass
class ModelConfig:
    arch: str = "resnet50"
    input_size: int = 224
    channels: int = 0  # 0 = from the data (1 for grayscale, 3 for colour)
    dropout: float = 0.3
    weights: str = "none"  # "none", "imagenet" or a weights file
    batchnorm_momentum: float = 0.0  # 0 = the backbone's own; 0.9 helps short runs from scratch


@dataclass
class AugmentConfig:
    """On-the-fly augmentation; defaults are the classic chest X-ray tutorial's set."""

    enabled: bool = True
    rotation_degrees: float = 20.0
    width_shift: float = 0.2
    height_shift: float = 0.2
    horizontal_flip: bool = True  # switch off where laterality matters
    vertical_flip: bool = True
    fill_mode: str = "nearest"


@dataclass
class TrainConfig:
    epochs: int = 20  # fine-tuning (phase two) epochs
    head_epochs: int = -1  # phase one, backbone frozen; -1 = 3 with pretrained weights, 0 from scratch
    batch_size: int = 32
    learning_rate: float = 1e-3  # phase one (head)
    fine_tune_learning_rate: float = 1e-4  # phase two
    fine_tune_at: str = "auto"  # first unfrozen backbone layer: name, index, or auto
    patience: int = 5  # early stopping on validation AUC
    class_weights: str = "balanced"  # "balanced" or "none"
    mixed_precision: str = "auto"  # auto (float16 with a GPU, else off), off, float16, bfloat16
    xla: str = "auto"  # auto (on with a GPU), on, off
    strategy: str = "auto"  # auto, default, mirrored, multiworker
    seed: int = 0


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in dataclasses.fields(RunConfig)}


def load_config(spec: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Defaults, then the spec file, then CLI overrides (values of None are 'not given' and ignored)."""
    config = RunConfig()
    if spec is not None:
        _apply(config, _read_toml(Path(spec)), origin=str(spec))
    if overrides:
        cleaned = {s: {k: v for k, v in values.items() if v is not None} for s, values in overrides.items()}
        _apply(config, cleaned, origin="command line")
    return config


def save_config(config: RunConfig, path: Path) -> None:
    import tomli_w

    from medtk.io import atomic_write_text

    atomic_write_text(path, tomli_w.dumps(config.to_dict()))


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such spec file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def _apply(config: RunConfig, values: dict[str, Any], origin: str) -> None:
    for section, entries in values.items():
        if section not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{section}]{_suggest(section, SECTIONS)}")
        if not isinstance(entries, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of keys")
        target = getattr(config, section)
        hints = get_type_hints(type(target))
        for key, value in entries.items():
            if key not in hints:
                raise ConfigError(f"{origin}: unknown key {section}.{key}{_suggest(key, hints)}")
            setattr(target, key, _coerce(value, hints[key], f"{origin}: {section}.{key}"))


def _coerce(value: Any, expected: type, where: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {expected.__name__}, got {value!r}")
    return value


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(options)})"
