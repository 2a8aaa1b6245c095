"""`ClassifierPool`: one interpreter per worker, lent out exclusively, on real TFLite models."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from medtk.runtime import Classifier
from medtk.serve.pool import ClassifierPool


def test_each_lease_is_an_interpreter_of_its_own(serve_models):
    pool = ClassifierPool(Classifier(serve_models["op"], num_threads=1), 2)
    assert pool.size == 2
    with pool.lease() as first, pool.lease() as second:
        assert first is not second and first._interpreter is not second._interpreter
        assert first.metadata is second.metadata is pool.primary.metadata
        image = np.full((64, 64), 128, np.uint8)
        assert first.predict(image).probabilities == second.predict(image).probabilities
        third: list = []

        def borrow() -> None:
            with pool.lease() as classifier:
                third.append(classifier)

        waiting = threading.Thread(target=borrow)
        waiting.start()
        waiting.join(0.2)
        assert waiting.is_alive(), "a third lease must wait while both interpreters are out"
    waiting.join(5)
    assert third and third[0] in (first, second)


def test_a_pool_needs_an_interpreter(serve_models):
    with pytest.raises(ValueError, match="at least one"):
        ClassifierPool(Classifier(serve_models["op"], num_threads=1), 0)
