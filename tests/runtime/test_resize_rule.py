"""A model is fed as it was validated: the resize rule in its metadata (`ModelInput.interpolation`) decides how
the runtime enlarges an image. Exports from now on use the exact rule (the same bytes on every CPU); files
from before it keep INTER_LINEAR, which they were validated with, and say on load what that costs on ARM."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from medtk.errors import ModelError
from medtk.runtime import Classifier
from medtk.runtime.imaging import INTERPOLATION_RULE, LEGACY_INTERPOLATION_RULE, prepare_input
from medtk.runtime.metadata import ModelMetadata, embed_metadata, read_metadata


def _with_rule(source: Path, target: Path, rule: str) -> Path:
    data = source.read_bytes()
    metadata = read_metadata(data)
    target.write_bytes(embed_metadata(data, replace(metadata, input=replace(metadata.input, interpolation=rule))))
    return target


def _small(size: int) -> np.ndarray:
    """An image the model must enlarge, on which INTER_LINEAR and INTER_LINEAR_EXACT give different bytes."""
    image = np.random.default_rng(2).integers(0, 256, (size // 3, size // 3), dtype=np.uint8)
    exact = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR_EXACT)
    assert not np.array_equal(exact, cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR))
    return image


def test_a_current_export_is_fed_by_the_exact_rule(test_models):
    classifier = Classifier(test_models.float32, num_threads=1)
    assert classifier.metadata.input.interpolation == INTERPOLATION_RULE
    image = _small(classifier.input_size)
    expected = cv2.resize(image, (classifier.input_size,) * 2, interpolation=cv2.INTER_LINEAR_EXACT)
    np.testing.assert_array_equal(classifier.prepare(image)[..., 0], expected)
    probs, _ = classifier.predict_prepared(classifier.prepare(image)[None])
    np.testing.assert_array_equal(list(classifier.predict(image).probabilities.values()), probs[0])


def test_an_older_export_is_fed_as_it_was_validated_and_says_so(test_models, tmp_path):
    older = _with_rule(test_models.float32, tmp_path / "older.tflite", LEGACY_INTERPOLATION_RULE)
    with pytest.warns(UserWarning, match=r"older\.tflite: exported when medtk enlarged images with OpenCV's "
                                         r"INTER_LINEAR, which rounds differently on x86-64 and ARM"):
        classifier = Classifier(older, num_threads=1)
    image = _small(classifier.input_size)
    expected = cv2.resize(image, (classifier.input_size,) * 2, interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(classifier.prepare(image)[..., 0], expected)
    probs, _ = classifier.predict_prepared(expected[None, :, :, None])
    np.testing.assert_array_equal(list(classifier.predict(image).probabilities.values()), probs[0])


def test_metadata_written_before_the_rule_was_recorded_reads_as_inter_linear(test_models):
    data = json.loads(read_metadata(test_models.float32.read_bytes()).to_json())
    del data["input"]["interpolation"]
    assert ModelMetadata.from_dict(data).input.interpolation == LEGACY_INTERPOLATION_RULE


def test_an_unknown_rule_is_refused_on_load(test_models, tmp_path):
    strange = _with_rule(test_models.float32, tmp_path / "strange.tflite", "bicubic-everywhere")
    with pytest.raises(ModelError, match=r"strange\.tflite: its inputs were resized by 'bicubic-everywhere'"):
        Classifier(strange, num_threads=1)
    with pytest.raises(Exception, match="unknown resize rule 'bicubic-everywhere'"):
        prepare_input(np.zeros((4, 4), np.uint8), 8, 1, "bicubic-everywhere")
