"""Transfer learning from medtk's own models, which works offline: `--weights RUN` or a backbone file.

ImageNet weights need the network; a model trained by medtk on a related task (or on more data) is
often the better start anyway. `--weights` tells apart `none`, `imagenet`, a medtk run folder (its
`model.keras`, or such a file itself), a backbone file exported here (`.npz`) and any other file,
which stays a Keras application weights file loaded by Keras as before.

A backbone file holds the backbone layers' weights only (BatchNorm statistics included, head left
out: the new task may have other classes), keyed `<layer name>/<index>`, with a JSON header naming
the format, the architecture and the layers. Loading matches layers by name and shape and is all or
nothing: a different architecture, a backbone that takes other input channels, or any missing or
differently shaped layer is refused with one line (ConfigError), never half-loaded. In medtk the preprocessing layer
turns grayscale into three channels, so a model trained on grayscale images transfers to colour ones
and back; the data's channel counts are reported, not refused.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtk.errors import ConfigError, ModelError

FORMAT = "medtk-backbone/1"
HEADER_KEY = "__medtk__"
MODEL_FILE = "model.keras"
MODEL_PREFIX = "medtk_"
_VALID = "none, imagenet, a medtk run folder, a backbone .npz exported by medtk, or a Keras weights file"


@dataclass(frozen=True)
class WeightsSource:
    """What a `--weights` value names: kind is none | imagenet | run | backbone | keras."""

    kind: str
    path: Path | None = None  # run: the model.keras file; backbone/keras: the file


@dataclass(frozen=True)
class LoadedWeights:
    """What `load_backbone_weights` copied into the model."""

    source: str
    kind: str  # "run" or "backbone"
    arch: str
    source_channels: int  # the source model's image channels (1 gray, 3 colour)
    layers: int
    arrays: int
    parameters: int


def resolve_weights(value: str) -> WeightsSource:
    """Tell apart the forms of `--weights` (no file is read beyond checking that it exists)."""
    text = str(value).strip()
    if text.lower() in ("none", ""):
        return WeightsSource("none")
    if text.lower() == "imagenet":
        return WeightsSource("imagenet")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise ConfigError(f"--weights {value!r}: a folder without {MODEL_FILE}, not a medtk run (valid: {_VALID})")
        return WeightsSource("run", path / MODEL_FILE)
    if not path.is_file():
        raise ConfigError(f"--weights {value!r}: no such file or folder (valid: {_VALID})")
    if path.suffix == ".keras":
        return WeightsSource("run", path)
    if path.suffix == ".npz":
        return WeightsSource("backbone", path)
    return WeightsSource("keras", path)


def export_backbone_weights(model, path: Path) -> int:
    """Write the backbone layers' weights of a medtk model to `path` (.npz), atomically; returns the array count."""
    from medtk.io import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".npz":
        raise ConfigError(f"backbone weights file {str(path)!r} must end in .npz")
    weights = _backbone_weights(model)
    header = {"format": FORMAT, "arch": _arch(model), "channels": int(model.input_shape[-1]), "layers": list(weights)}
    arrays = {f"{name}/{i}": array for name, values in weights.items() for i, array in enumerate(values)}
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER_KEY: np.array(json.dumps(header))}, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return len(arrays)


def load_backbone_weights(model, source: str | Path | WeightsSource) -> LoadedWeights:
    """Copy a run's or a backbone file's backbone weights into `model` (all or nothing)."""
    resolved = source if isinstance(source, WeightsSource) else resolve_weights(str(source))
    if resolved.kind == "run":
        arch, channels, weights = _read_run(resolved.path)
    elif resolved.kind == "backbone":
        arch, channels, weights = _read_backbone_file(resolved.path)
    else:
        raise ConfigError(f"--weights {str(source)!r}: is {resolved.kind}, not a medtk run or backbone file")
    origin = str(resolved.path)
    target = _backbone_layers(model)
    if arch != _arch(model):
        raise ConfigError(f"--weights {origin!r}: architecture mismatch: a {arch} backbone cannot initialise "
                          f"this {_arch(model)} model")
    _check_match(origin, target, weights)
    for layer in target:
        layer.set_weights(weights[layer.name])
    arrays = [array for values in weights.values() for array in values]
    return LoadedWeights(
        source=origin, kind=resolved.kind, arch=arch, source_channels=channels, layers=len(target),
        arrays=len(arrays), parameters=int(sum(array.size for array in arrays)),
    )


def _check_match(origin: str, target: list, weights: dict[str, list[np.ndarray]]) -> None:
    names = [layer.name for layer in target]
    missing = [name for name in names if name not in weights]
    extra = [name for name in weights if name not in set(names)]
    if missing:
        raise ConfigError(f"--weights {origin!r}: architecture mismatch: the source backbone lacks {len(missing)} "
                          f"layer(s) of this model ({', '.join(missing[:3])})")
    if extra:
        raise ConfigError(f"--weights {origin!r}: architecture mismatch: the source backbone has {len(extra)} "
                          f"layer(s) this model lacks ({', '.join(extra[:3])})")
    for index, layer in enumerate(target):
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in weights[layer.name]]
        if index == 0 and _input_channels(found) != _input_channels(expected):
            raise ConfigError(f"--weights {origin!r}: its backbone takes {_input_channels(found)} input channels, "
                              f"this model's {_input_channels(expected)}")
        if found != expected:
            raise ConfigError(f"--weights {origin!r}: architecture mismatch: layer {layer.name!r} has shapes {found}, "
                              f"this model {expected}")


def _input_channels(shapes: list[tuple[int, ...]]) -> int | None:
    """The first convolution's input channels (kernel h, w, in, out)."""
    return shapes[0][-2] if shapes and len(shapes[0]) == 4 else None


def _read_run(path: Path) -> tuple[str, int, dict[str, list[np.ndarray]]]:
    from medtk.train.model import load_classifier

    source = load_classifier(path)
    return _arch(source), int(source.input_shape[-1]), _backbone_weights(source)


def _read_backbone_file(path: Path) -> tuple[str, int, dict[str, list[np.ndarray]]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive[HEADER_KEY]))
            if header.get("format") != FORMAT:
                raise ModelError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
            weights: dict[str, list[np.ndarray]] = {name: [] for name in header["layers"]}
            for key in archive.files:
                if key != HEADER_KEY:
                    name, _, index = key.rpartition("/")
                    weights[name].append((int(index), archive[key]))
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"{path}: not a medtk backbone weights file ({type(error).__name__}: {error})") from None
    ordered = {name: [array for _, array in sorted(pairs, key=lambda pair: pair[0])] for name, pairs in weights.items()}
    return str(header["arch"]), int(header["channels"]), ordered


def _backbone_layers(model) -> list:
    from medtk.train.model import backbone_layers

    return [layer for layer in backbone_layers(model) if layer.weights]


def _backbone_weights(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in _backbone_layers(model)}


def _arch(model) -> str:
    return model.name.removeprefix(MODEL_PREFIX)
