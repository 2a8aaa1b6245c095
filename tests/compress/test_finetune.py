"""Distillation from the float model during pruning and QAT: the student learns the teacher's CAMs."""

from __future__ import annotations

import logging

import numpy as np
import pytest


def _data(count: int = 16, size: int = 32):
    from medtk.compress.finetune import TrainingData

    rng = np.random.default_rng(0)
    return TrainingData(images=rng.integers(0, 256, (count, size, size, 1)).astype(np.uint8),
                        labels=np.arange(count) % 2, num_classes=2, class_weight={0: 1.0, 1: 2.0}, augment=None, seed=0)


@pytest.mark.slow
def test_distilled_pruning_and_qat_run_and_log_their_losses(caplog):
    from medtk.compress.finetune import Distillation
    from medtk.compress.prune import copy_model, prune
    from medtk.compress.qat import quantization_aware_training
    from medtk.train.model import ModelSpec, build_classifier

    teacher = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2))
    distillation = Distillation(teacher=copy_model(teacher))
    before = [w.copy() for w in distillation.teacher.get_weights()]
    with caplog.at_level(logging.INFO, logger="medtk.compress.finetune"):
        pruned, reached = prune(copy_model(teacher), _data(), sparsity=0.5, epochs=2, learning_rate=1e-4, batch_size=8,
                                distillation=distillation)
        quantized = quantization_aware_training(pruned, _data(), prune_preserve=True, epochs=1, learning_rate=1e-5,
                                                batch_size=8, distillation=distillation)
    assert reached == pytest.approx(0.5, abs=0.02)
    assert sorted(quantized.output_names) == ["cam", "probs"]
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert any(line.startswith("prune:") and "cam" in line for line in lines)
    assert any(line.startswith("qat:") and "probs_kd" in line for line in lines)
    assert all(np.array_equal(a, b) for a, b in zip(before, distillation.teacher.get_weights())), "the teacher trained"
