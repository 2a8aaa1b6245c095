"""The finding of a binary task: the positive class every sensitivity, specificity, PPV and NPV is about.

Chosen by `--positive-class`, else the data source's catalogue, else the last class; the origin is
kept so the user is told where the choice came from. Multi-class tasks have none (argmax decides).
"""

from __future__ import annotations

from dataclasses import dataclass

from medtk.errors import ConfigError


@dataclass(frozen=True)
class Finding:
    """The positive class of a binary task, and where that choice came from (shown to the user)."""

    name: str
    index: int
    origin: str  # "--positive-class", "the data source's catalogue" or "the last class"


def resolve_finding(requested: str, class_names: tuple[str, ...] | list[str], catalogued: str | None) -> Finding | None:
    """The finding class of a binary task (None for more classes); a name not among the classes is refused."""
    names = [str(name) for name in class_names]
    if len(names) != 2:
        if requested:
            raise ConfigError(f"--positive-class {requested!r}: only binary tasks have one; this task has "
                              f"{len(names)} classes ({', '.join(names)}) and is decided by argmax")
        return None
    if requested:
        if requested not in names:
            raise ConfigError(f"--positive-class {requested!r} is not a class of this data; expected one of "
                              f"{', '.join(repr(n) for n in names)}")
        return Finding(requested, names.index(requested), "--positive-class")
    if catalogued in names:
        return Finding(catalogued, names.index(catalogued), "the data source's catalogue")
    return Finding(names[1], 1, "the last class")
