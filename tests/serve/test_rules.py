"""Selection rules: TOML -> first matching rule wins; unknown keywords are errors with suggestions."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from medtk.errors import ConfigError
from medtk.serve.rules import Rules, load_rules, parse_rules


def _ds(**values) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_default_processes_everything():
    assert Rules().decide(_ds(Modality="CT")) == "process"
    assert load_rules(None).decide(_ds()) == "process"


def test_first_matching_rule_wins(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        'default = "skip"\n'
        '[[rule]]\naction = "skip"\nModality = "CR"\nBodyPartExamined = ["SKULL"]\n'
        '[[rule]]\naction = "process"\nModality = ["cr", "DX"]\nBodyPartExamined = ["CHEST*"]\n'
    )
    rules = load_rules(path)
    assert rules.decide(_ds(Modality="CR", BodyPartExamined="CHEST")) == "process"
    assert rules.decide(_ds(Modality="DX", BodyPartExamined="CHEST_PA")) == "process"
    assert rules.decide(_ds(Modality="CR", BodyPartExamined="SKULL")) == "skip"
    assert rules.decide(_ds(Modality="CT", BodyPartExamined="CHEST")) == "skip"  # default
    assert rules.decide(_ds(Modality="CR")) == "skip"  # an absent keyword never matches


def test_multivalued_attributes_match_any_value():
    rules = parse_rules({"default": "skip", "rule": [{"action": "process", "ImageType": ["DERIVED"]}]})
    assert rules.decide(_ds(ImageType=["ORIGINAL", "PRIMARY"])) == "skip"
    assert rules.decide(_ds(ImageType=["DERIVED", "SECONDARY"])) == "process"


def test_unknown_keyword_suggests_the_right_one():
    with pytest.raises(ConfigError, match="'Modalty' is not a DICOM keyword; did you mean Modality"):
        parse_rules({"rule": [{"action": "process", "Modalty": "CR"}]})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"default": "maybe"}, "default = 'maybe'; expected one of"),
        ({"rule": [{"action": "run", "Modality": "CR"}]}, "action = 'run'"),
        ({"rule": [{"action": "skip"}]}, "names no DICOM keyword"),
        ({"rules": []}, "unknown top-level key"),
    ],
)
def test_invalid_rules_are_refused(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_rules(data)


def test_unreadable_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]\n")
    with pytest.raises(ConfigError, match="not a readable TOML file"):
        load_rules(path)
