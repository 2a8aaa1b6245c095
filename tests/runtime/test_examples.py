"""The examples in the runtime API's docstrings (`Classifier`, `Classifier.predict`, `Prediction`) run as
written: doctest, in a folder holding a real small int8 model as `model_int8.tflite` and `chest.png`."""

from __future__ import annotations

import doctest
import io
import shutil

import cv2
import pytest

from medtk.runtime.classifier import Classifier
from medtk.runtime.prediction import Prediction


@pytest.mark.parametrize("documented", [Classifier, Classifier.predict, Prediction], ids=lambda obj: obj.__qualname__)
def test_the_docstring_example_runs(documented, int8_model, gray_image, tmp_path, monkeypatch):
    shutil.copy(int8_model, tmp_path / "model_int8.tflite")
    assert cv2.imwrite(str(tmp_path / "chest.png"), gray_image)
    monkeypatch.chdir(tmp_path)
    (example,) = doctest.DocTestFinder(recurse=False).find(documented, documented.__qualname__, globs={})
    assert len(example.examples) >= 3
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(example, out=report.write)
    assert result.failed == 0, report.getvalue()
