"""What compress loads before any long step: a calibration sample too small for trustworthy int8 ranges
is warned about, naming why it is small."""

from __future__ import annotations

import logging

from medtk.compress.inputs import MIN_CALIBRATION_IMAGES, few_calibration_images, load_inputs
from medtk.compress.options import CompressOptions
from medtk.run import Run


def test_a_small_calibration_sample_names_its_cause():
    assert few_calibration_images(MIN_CALIBRATION_IMAGES, 10_000) is None
    asked = few_calibration_images(16, 10_000)
    assert asked.startswith("int8 ranges come from 16 calibration images (--calibration 16); with fewer than 50")
    assert "give --calibration 100 or more" in asked
    small = few_calibration_images(30, 30)
    assert small.startswith("int8 ranges come from 30 calibration images (the training split has only 30 images)")


def test_compress_warns_before_calibrating_on_a_few_images(trained_run, caplog):
    with caplog.at_level(logging.WARNING, logger="medtk.compress.inputs"):
        inputs = load_inputs(Run(trained_run), CompressOptions(int8=True, prune=False, qat=False, calibration=8))
    assert len(inputs.calibration) == 8
    assert [m for m in caplog.messages if m.startswith("int8 ranges come from")] == [few_calibration_images(8, 10**9)]
