from pathlib import Path

import pytest

from medtk.config import RunConfig, load_config, save_config
from medtk.errors import ConfigError


def test_defaults_then_spec_then_cli(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[model]\ninput_size = 64\narch = "resnet50"\n[train]\nepochs = 3\nlearning_rate = 1\n')
    config = load_config(spec, {"train": {"epochs": 7, "batch_size": None}})
    assert config.model.input_size == 64
    assert config.train.epochs == 7  # the CLI wins over the spec file
    assert config.train.batch_size == RunConfig().train.batch_size  # None means "not given"
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)


def test_unknown_key_suggests_the_close_one(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key train.epoch; did you mean 'epochs'"):
        load_config(spec)


def test_unknown_section_and_wrong_type(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text("[trian]\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"unknown section \[trian\]; did you mean 'train'"):
        load_config(spec)
    spec.write_text('[train]\nepochs = "many"\n')
    with pytest.raises(ConfigError, match=r"train.epochs must be int, got 'many'"):
        load_config(spec)


def test_bad_toml_and_missing_file_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such spec file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(broken)


def test_saved_config_round_trips(tmp_path: Path):
    config = load_config(None, {"data": {"src": "synthetic:100"}, "model": {"input_size": 48}})
    save_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == config
