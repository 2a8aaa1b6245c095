"""Device profiles by name: TOML files shipped with the package, looked up by name or alias.

A profile says what a target device is (CPU, memory, accelerators), which LiteRT delegates to try on
it, and published latency figures (with their sources) that `medtk bench` uses to estimate the
device's latency when it runs on another machine. An unknown name lists the close matches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from typing import Any

from medtk.errors import ConfigError
from medtk.tomlcompat import tomllib

_PROFILE_PACKAGE = "medtk.devices"
_PROFILE_DIR = "profiles"
REFERENCE_KINDS = ("published", "measured", "derived")
PRECISIONS = ("float32", "int8")  # `medtk.variants.Variant.precision`
# What produced a reference figure: only "litert" (LiteRT / TensorFlow Lite on the CPU, the engine medtk runs)
# scales to an estimate for a medtk model; the others are context (full TensorFlow, TensorRT on a Jetson's GPU,
# the Edge TPU runtime), and a figure from them must name its accelerator if it ran on one.
ENGINES = ("litert", "tensorflow", "tensorrt", "edgetpu")
REFERENCE_PRECISIONS = ("float32", "float16", "int8", "unstated")  # "unstated": the source does not say


@dataclass(frozen=True)
class CpuSpec:
    model: str
    cores: int
    arch: str
    freq_ghz: float


@dataclass(frozen=True)
class Reference:
    """One latency figure for a known model on this device, and where it comes from."""

    model: str
    input_size: int
    precision: str
    latency_ms: float
    threads: int
    macs: float  # multiply-accumulates of one inference, used to scale to another model
    kind: str  # "published" | "measured" | "derived" (computed from another device's figure)
    source: str
    note: str = ""
    accelerator: str = ""  # "" = CPU; otherwise the accelerator the figure was measured on
    derived_from: str = ""
    # What ran it (ENGINES), required in every profile; "" only in bench files written before it was recorded.
    engine: str = ""

    def describe(self) -> str:
        """What produced the figure, e.g. "litert on the CPU, precision unstated, derived from raspberry-pi-5"."""
        where = f"on the {self.accelerator}" if self.accelerator else "on the CPU"
        origin = f"derived from {self.derived_from}" if self.kind == "derived" else self.kind
        return f"{self.engine or 'engine not recorded'} {where}, precision {self.precision}, {origin}"


@dataclass(frozen=True)
class Profile:
    name: str
    aliases: tuple[str, ...]
    description: str
    cpu: CpuSpec
    memory_mb: int
    accelerators: tuple[str, ...]
    delegates: tuple[str, ...]
    default_threads: int
    references: tuple[Reference, ...]
    # Precisions the device's accelerator executes, for deploying on it ("int8": an Edge TPU or NPU runs
    # full-integer models only); empty = any precision (a CPU or GPU). Compress recommends accordingly.
    runs: tuple[str, ...] = ()

    def cpu_references(self) -> tuple[Reference, ...]:
        """The figures an estimate for a medtk model may scale: LiteRT on the CPU."""
        return tuple(ref for ref in self.references if not ref.accelerator and ref.engine == "litert")


@dataclass(frozen=True)
class Resolved:
    """A profile and how the user's name reached it (for saying which profile an alias chose)."""

    profile: Profile
    requested: str

    @property
    def via_alias(self) -> bool:
        return self.requested.lower() != self.profile.name

    def describe(self) -> str:
        if self.via_alias:
            return f"device {self.requested!r} is an alias: using profile {self.profile.name!r}"
        return f"device profile {self.profile.name!r}"


def list_profiles() -> tuple[Profile, ...]:
    """Every shipped profile, sorted by name."""
    return tuple(sorted(_load_all().values(), key=lambda profile: profile.name))


def load_profile(name: str) -> Profile:
    """The profile called `name` (or one of its aliases); ConfigError with close matches otherwise."""
    return resolve_profile(name).profile


def resolve_profile(name: str) -> Resolved:
    key = name.strip().lower()
    names = _names()
    if key not in names:
        close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown device profile {name!r}; {hint}"
            f"known profiles: {', '.join(p.name for p in list_profiles())} (see `medtk devices`)"
        )
    return Resolved(profile=_load_all()[names[key]], requested=name)


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    table: dict[str, str] = {}
    for profile in _load_all().values():
        for key in (profile.name, *profile.aliases):
            if key in table and table[key] != profile.name:
                raise ConfigError(f"device alias {key!r} is claimed by {table[key]} and {profile.name}")
            table[key] = profile.name
    return table


@lru_cache(maxsize=1)
def _load_all() -> dict[str, Profile]:
    folder = resources.files(_PROFILE_PACKAGE) / _PROFILE_DIR
    profiles = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".toml"):
            profile = parse_profile(entry.read_text(encoding="utf-8"), entry.name)
            profiles[profile.name] = profile
    return profiles


def parse_profile(text: str, origin: str) -> Profile:
    """Parse one profile's TOML; unknown or missing keys are a ConfigError naming the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin}: invalid TOML ({error})") from None
    data = dict(data)
    cpu = _build(CpuSpec, data.pop("cpu", None), f"{origin} [cpu]")
    refs = tuple(
        _build(Reference, entry, f"{origin} [[reference]] #{index + 1}")
        for index, entry in enumerate(data.pop("reference", []))
    )
    for ref in refs:
        if ref.kind not in REFERENCE_KINDS or not ref.source.strip():
            raise ConfigError(f"{origin}: reference {ref.model!r} needs kind in {REFERENCE_KINDS} and a source")
        if ref.engine not in ENGINES:
            raise ConfigError(f"{origin}: reference {ref.model!r}: unknown engine {ref.engine!r}; known: {', '.join(ENGINES)}")
        if ref.precision not in REFERENCE_PRECISIONS:
            raise ConfigError(f"{origin}: reference {ref.model!r}: unknown precision {ref.precision!r}; "
                              f"known: {', '.join(REFERENCE_PRECISIONS)}")
        if ref.engine in ("tensorrt", "edgetpu") and not ref.accelerator:
            raise ConfigError(f"{origin}: reference {ref.model!r}: a {ref.engine} figure ran on an accelerator; name it")
    data.update(cpu=cpu, references=refs)
    for key in ("aliases", "accelerators", "delegates", "runs"):
        data[key] = tuple(str(item).lower() if key == "aliases" else str(item) for item in data.get(key, ()))
    profile = _build(Profile, data, origin)
    unknown = [precision for precision in profile.runs if precision not in PRECISIONS]
    if unknown:
        raise ConfigError(f"{origin}: runs: unknown precision {unknown[0]!r}; known: {', '.join(PRECISIONS)}")
    if not profile.cpu_references():
        raise ConfigError(f"{origin}: needs at least one CPU [[reference]] latency figure with a source")
    return profile


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: missing table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{hint}")
    try:
        return cls(**data)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
