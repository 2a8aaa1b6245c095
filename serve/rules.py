"""Selection rules: which received instances the node runs the model on (a TOML file, first match wins).

    default = "process"            # what happens when no rule matches ("process" or "skip")

    [[rule]]
    action = "skip"
    Modality = ["CT", "MR"]         # any DICOM keyword; values match case-insensitively, * and ? allowed

    [[rule]]
    action = "process"
    Modality = ["CR", "DX"]
    BodyPartExamined = ["CHEST"]

A rule matches when every keyword it names matches; a keyword absent from the instance never
matches. Without a rules file every image the node accepts is processed.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtk.errors import ConfigError

ACTIONS = ("process", "skip")


@dataclass(frozen=True)
class Rule:
    action: str
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)  # DICOM keyword -> patterns

    def matches(self, dataset: Any) -> bool:
        for keyword, patterns in self.match.items():
            value = dataset.get(keyword)
            if value is None or value == "":
                return False
            values = [str(v) for v in value] if _is_multi(value) else [str(value)]
            if not any(fnmatch.fnmatchcase(v.upper(), p.upper()) for v in values for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    default: str = "process"

    def decide(self, dataset: Any) -> str:
        """'process' or 'skip' for one dataset (its header is enough)."""
        for rule in self.rules:
            if rule.matches(dataset):
                return rule.action
        return self.default


def load_rules(path: Path | None) -> Rules:
    """Rules from a TOML file; `None` gives the default (process everything accepted)."""
    if path is None:
        return Rules()
    from medtk.tomlcompat import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"--rules {str(path)!r}: not a readable TOML file ({error})") from None
    return parse_rules(data, str(path))


def parse_rules(data: dict[str, Any], name: str = "rules") -> Rules:
    unknown = set(data) - {"default", "rule"}
    if unknown:
        raise ConfigError(f"{name}: unknown top-level key(s) {sorted(unknown)}; expected 'default' and [[rule]] tables")
    default = _action(data.get("default", "process"), f"{name}: default")
    rules = []
    for number, table in enumerate(data.get("rule", []), start=1):
        where = f"{name}: rule {number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a [[rule]] table")
        action = _action(table.get("action", "process"), f"{where} action")
        match = {}
        for keyword, patterns in table.items():
            if keyword == "action":
                continue
            _check_keyword(keyword, where)
            values = patterns if isinstance(patterns, list) else [patterns]
            if not values or not all(isinstance(v, (str, int)) for v in values):
                raise ConfigError(f"{where}: {keyword} = {patterns!r}; expected a string or a list of strings")
            match[keyword] = tuple(str(v) for v in values)
        if not match:
            raise ConfigError(f"{where}: names no DICOM keyword to match (e.g. Modality = [\"DX\"])")
        rules.append(Rule(action=action, match=match))
    return Rules(rules=tuple(rules), default=default)


def _action(value: Any, where: str) -> str:
    if value not in ACTIONS:
        raise ConfigError(f"{where} = {value!r}; expected one of {list(ACTIONS)}")
    return value


def _check_keyword(keyword: str, where: str) -> None:
    from pydicom.datadict import keyword_dict

    if keyword in keyword_dict:
        return
    close = difflib.get_close_matches(keyword, list(keyword_dict), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"{where}: {keyword!r} is not a DICOM keyword{hint}")


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
