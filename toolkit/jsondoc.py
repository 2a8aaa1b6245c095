"""Versioned JSON documents: the run folder's files (metrics, compress, bench) as typed dataclasses.

Each document class names its schema (`medtk-metrics/1`); `to_json` writes it with that `schema`
field, `from_json` refuses a newer major version with a clear message and reads files of today's and
older versions (a file written before the field existed counts as version 1). Unknown keys are
ignored, so a newer minor addition does not break an older reader. Typed reading is dacite's.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from medtk.errors import ModelError

D = TypeVar("D", bound="Document")


class Document:
    """Mixin for a dataclass that is one versioned JSON file."""

    SCHEMA: ClassVar[str]  # "medtk-<name>/<version>"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        data.pop("schema", None)
        checked = {"schema": self.SCHEMA, **data}
        check_finite(checked, self.SCHEMA)
        return _plain(checked)

    @classmethod
    def from_json(cls: type[D], data: Any, origin: str | Path = "document") -> D:
        import dacite

        if not isinstance(data, dict):
            raise ModelError(f"{origin}: expected a JSON object, got {type(data).__name__}")
        check_schema(data.get("schema"), cls.SCHEMA, origin)
        values = {key: value for key, value in data.items() if key != "schema"}
        try:
            return dacite.from_dict(cls, values, config=dacite.Config(cast=[tuple], check_types=True))
        except (dacite.DaciteError, TypeError, ValueError) as error:
            raise ModelError(f"{origin}: not a valid {cls.SCHEMA} file ({error})") from None


def _plain(value: Any) -> Any:
    """JSON's own types: tuples become lists, so a document equals what reading its file gives."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def check_schema(found: Any, expected: str, origin: str | Path) -> None:
    name, version = _split(expected)
    if found is None:
        return  # written before documents carried a schema: today's layout, version 1
    if not isinstance(found, str) or "/" not in found:
        raise ModelError(f"{origin}: schema {found!r} is not of the form '{name}/N'")
    found_name, found_version = _split(found)
    if found_name != name:
        raise ModelError(f"{origin}: is a {found_name} file, expected {name}")
    if found_version > version:
        raise ModelError(
            f"{origin}: schema {found} is newer than this medtk reads ({expected}); upgrade medtk to read it"
        )


def _split(schema: str) -> tuple[str, int]:
    name, _, version = schema.rpartition("/")
    try:
        return name, int(version)
    except ValueError:
        return name, 10**9  # an unparseable version is treated as newer than anything we know


def check_finite(value: Any, where: str = "") -> None:
    """Raise ValueError naming the key path of the first NaN or infinity: JSON is written strict."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'value'} is {value}; medtk never writes NaN or infinity to JSON")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, f"{where}[{index}]")
