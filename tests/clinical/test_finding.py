"""The finding class: from --positive-class, else the data source's catalogue, else the last class."""

from __future__ import annotations

import pytest

from medtk.clinical import Finding, resolve_finding
from medtk.errors import ConfigError


def test_finding_comes_from_the_flag_then_the_catalogue_then_the_last_class():
    names = ("malignant", "normal, benign")
    assert resolve_finding("malignant", names, None) == Finding("malignant", 0, "--positive-class")
    assert resolve_finding("", names, "malignant") == Finding("malignant", 0, "the data source's catalogue")
    assert resolve_finding("", names, None) == Finding("normal, benign", 1, "the last class")
    assert resolve_finding("", ("a", "b", "c"), None) is None  # multi-class: argmax, no finding


def test_a_finding_that_is_not_a_class_is_refused_with_the_options():
    with pytest.raises(ConfigError, match=r"--positive-class 'cancer' is not a class of this data; expected one of "
                                          r"'malignant', 'normal, benign'"):
        resolve_finding("cancer", ("malignant", "normal, benign"), None)
    with pytest.raises(ConfigError, match="only binary tasks have one"):
        resolve_finding("a", ("a", "b", "c"), None)
