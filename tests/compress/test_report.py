"""compress's table and compress.json say why each op of int8_mixed stayed float and how sure the
validation decision was (issue 22)."""

from __future__ import annotations

from dataclasses import replace

from medtk.compress.report import format_table
from medtk.schema.compress import AccuracyControl, CompressReport, KeptFloat, ValidationCam
from tests.compress.test_recommend import ENTRIES
from tests.compress.test_verdict import _report

KEPT = KeptFloat(tensor="model/conv5_block3_out/Relu;model/x", op="ADD", noise_rank=3, noise=0.21,
                 held_out_disagreement_alone=0.05, held_out_disagreement_full=0.12,
                 reason="ADD ranked 3 by int8 noise on the held-out images (rmse/std 0.2100); kept float alone "
                        "it brings the held-out disagreement with float32 from 0.1200 to 0.0500")
CONTROL = AccuracyControl(max_val_drop=0.005, max_float_layers=8, val_reference=0.97, full_int8_val=0.96, val=0.969,
                          within_budget=True, ranking="held-out agreement", float_layers=(KEPT.tensor,), models_tried=10,
                          held_out_images=500, full_int8_val_drop=(0.01, 0.004, 0.016), val_drop=(0.001, -0.002, 0.004),
                          kept_float=(KEPT,), full_int8_val_cam=ValidationCam(0.85, 0.84, 0.31, 0.36),
                          val_cam=ValidationCam(0.962, 0.955, 0.05, 0.07))


def test_the_table_gives_the_interval_and_each_float_ops_reason():
    table = format_table(replace(_report(ENTRIES), accuracy_control=CONTROL))
    assert "ranked on 500 held-out training images, decided on validation" in table
    assert ("full int8 0.9600 (drop 0.0100, 95% 0.0040..0.0160), CAM r 0.850 (95% low 0.840), peak shift 0.31 "
            "cells (95% high 0.36), budget: upper bound <= 0.005 and the CAM gate at its interval's end") in table
    assert "val AUC 0.9690 (drop 0.0010, 95% -0.0020..0.0040), CAM r 0.962 (95% low 0.955)" in table
    assert "  float: model/conv5_block3_out/Relu: ADD ranked 3 by int8 noise" in table


def test_the_record_round_trips_through_compress_json():
    report = replace(_report(ENTRIES), accuracy_control=CONTROL)
    again = CompressReport.from_json(report.to_json())
    assert again.accuracy_control == CONTROL and again.accuracy_control.kept_float[0].noise_rank == 3
    assert again.accuracy_control.val_cam.correlation_low == 0.955
