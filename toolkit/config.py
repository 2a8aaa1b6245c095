"""Typed run configuration: dataclasses hold the defaults, spec files and CLI flags only override them.

A spec file is TOML with one section per stage (`[data]`, `[model]`, `[augment]`, `[train]`,
`[clinical]`); unknown
sections or keys are an error with a suggestion, values are checked against the field's type and never
evaluated. The resolved configuration is saved in the run folder so a run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from medtk.errors import ConfigError
from medtk.tomlcompat import tomllib


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
    """The model's defaults, written once: `medtk.train.model.ModelSpec` takes its defaults from here."""

    arch: str = "resnet50"
    input_size: int = 224
    channels: int = 0  # 0 = from the data (1 for grayscale, 3 for colour)
    dropout: float = 0.3
    weights: str = "none"  # "none", "imagenet", a medtk run folder (its backbone) or a weights file
    # 0 = the backbone's own (0.99 ResNet, 0.999 MobileNetV2): precise BatchNorm recomputes the statistics
    # a short run's moving averages would lag behind.
    batchnorm_momentum: float = 0.0
    # 32: the backbone as published. 16: last stage dilated, a 2x finer CAM at 1.4-1.5x the latency, a
    # per-deployment choice (benchmarks/RESULTS.md, "The cost of output stride 16").
    output_stride: Literal[16, 32] = 32


@dataclass
class AugmentConfig:
    """On-the-fly augmentation; defaults are the classic chest X-ray tutorial's set."""

    enabled: bool = True
    rotation_degrees: float = 20.0
    width_shift: float = 0.2
    height_shift: float = 0.2
    horizontal_flip: bool = True  # switch off where laterality matters
    vertical_flip: bool = True
    fill_mode: Literal["nearest", "reflect", "wrap", "constant"] = "nearest"


@dataclass
class TrainConfig:
    # fine-tuning (phase two, or the only phase from scratch) epochs; -1 = auto: 20, raised until the phase
    # makes min_steps optimizer steps (medtk.train.schedule). An explicit number is kept, with a warning if short.
    epochs: int = -1
    min_steps: int = 1000  # the step floor of a run (not of an epoch); 0 = none
    head_epochs: int = -1  # phase one, backbone frozen; -1 = 3 with pretrained weights, 0 from scratch
    batch_size: int = 32
    learning_rate: float = 1e-3  # phase one (head)
    fine_tune_learning_rate: float = 1e-4  # phase two
    fine_tune_at: str = "auto"  # first unfrozen backbone layer: name, index, or auto
    patience: int = 5  # early stopping on smoothed validation AUC; at least a tenth of the run's epochs
    val_smoothing: float = 0.6  # weight of the past in the moving average of val AUC that callbacks watch
    class_weights: Literal["balanced", "none"] = "balanced"
    mixed_precision: Literal["auto", "off", "float16", "bfloat16"] = "auto"  # auto: float16 with a GPU, else off
    xla: Literal["auto", "on", "off"] = "auto"  # auto: on with a GPU
    strategy: Literal["auto", "default", "mirrored", "multiworker"] = "auto"
    precise_batchnorm: bool = True  # recompute BatchNorm statistics over the training data where BatchNorm trains
    # how training reads images: auto = a prepared dataset streams its shards when train + val would not fit
    # in memory comfortably (medtk.train.prepared.choose_pipeline); a folder or CSV source is first decoded
    # once into the run folder (RUN/prepared), which both paths and every later stage read
    input_pipeline: Literal["auto", "memory", "stream"] = "auto"
    seed: int = 0


@dataclass
class ClinicalConfig:
    """How a binary model's output becomes a decision a clinician can act on (multi-class: argmax)."""

    positive_class: str = ""  # the finding; "" = the data source's finding class, else the last class
    operating_point: str = "youden"  # youden, sensitivity:X, specificity:X or threshold:T, chosen on validation
    calibrate: bool = True  # temperature scaling fitted on validation, folded into the graph


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    clinical: ClinicalConfig = field(default_factory=ClinicalConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in dataclasses.fields(RunConfig)}

# Ranges checked when a configuration is loaded, before anything is created or decoded:
# (section, key) -> (lowest, highest), inclusive; None = unbounded on that side.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("data", "val_fraction"): (0.0, 0.9),
    ("data", "test_fraction"): (0.0, 0.9),
    ("data", "max_bad_fraction"): (0.0, 1.0),
    ("data", "subset"): (0, None),
    ("model", "input_size"): (16, 1024),
    ("model", "channels"): (0, 3),
    ("model", "dropout"): (0.0, 0.95),
    ("model", "batchnorm_momentum"): (0.0, 0.9999),
    ("augment", "rotation_degrees"): (0.0, 180.0),
    ("augment", "width_shift"): (0.0, 1.0),
    ("augment", "height_shift"): (0.0, 1.0),
    ("train", "epochs"): (-1, 10_000),
    ("train", "min_steps"): (0, 10_000_000),
    ("train", "val_smoothing"): (0.0, 0.99),
    ("train", "head_epochs"): (-1, 10_000),
    ("train", "batch_size"): (1, 4096),
    ("train", "learning_rate"): (1e-9, 10.0),
    ("train", "fine_tune_learning_rate"): (1e-9, 10.0),
    ("train", "patience"): (1, 10_000),
}


def load_config(spec: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Defaults, then the spec file, then CLI overrides (values of None are 'not given' and ignored)."""
    config = RunConfig()
    if spec is not None:
        _apply(config, _read_toml(Path(spec)), origin=str(spec))
    if overrides:
        cleaned = {s: {k: v for k, v in values.items() if v is not None} for s, values in overrides.items()}
        _apply(config, cleaned, origin="command line")
    check_config(config, origin=str(spec) if spec is not None else "configuration")
    return config


def check_config(config: RunConfig, origin: str) -> None:
    """Every range and cross-field rule; a violation is one ConfigError naming the key and the value."""
    for (section, key), (low, high) in RANGES.items():
        value = getattr(getattr(config, section), key)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
            raise ConfigError(f"{origin}: {section}.{key} = {value!r} is out of range ({bounds})")
    if config.data.val_fraction + config.data.test_fraction >= 1.0:
        raise ConfigError(f"{origin}: data.val_fraction + data.test_fraction must leave training data (< 1), got "
                          f"{config.data.val_fraction} + {config.data.test_fraction}")
    if config.model.channels == 2:
        raise ConfigError(f"{origin}: model.channels = 2 is not valid; expected 0 (from the data), 1 or 3")
    from medtk.clinical import parse_rule

    try:
        parse_rule(config.clinical.operating_point)
    except ConfigError as error:
        raise ConfigError(f"{origin}: clinical.operating_point: {error}") from None
    pretrained = config.model.weights != "none"
    if config.train.epochs == 0 and (not pretrained or config.train.head_epochs == 0):
        raise ConfigError(f"{origin}: train.epochs = 0 leaves nothing to train; give at least 1 epoch")


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


def _coerce(value: Any, expected: Any, where: str) -> Any:
    if get_origin(expected) is Literal:
        choices = get_args(expected)
        if value not in choices:
            raise ConfigError(f"{where} = {value!r} is not valid; expected one of {', '.join(map(str, choices))}")
        return value
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {expected.__name__}, got {value!r}")
    return value


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(options)})"
