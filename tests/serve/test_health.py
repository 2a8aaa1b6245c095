"""`/healthz` answers 503 with the reasons while the node cannot make progress, and 200 with each
destination's state otherwise (issue 21): a stalled queue, a dead thread, too little disk; a destination
that is down is reported without making the node unready."""

from __future__ import annotations

import logging
import sys

import cv2
import httpx
import pytest
from tests.serve.serve_helpers import free_port, healthz, radiograph, send_datasets, wait_until

from medtk.errors import ConfigError
from medtk.serve.config import Destination, ServeConfig


def test_work_that_does_not_move_is_reported_as_a_stall(start_node, chest_images):
    node = start_node(stall_seconds=1)
    assert healthz(node.http_port) == (200, {"status": "ready"})
    with node.classifiers.lease():  # the only worker waits for an interpreter: nothing completes
        assert send_datasets(node.dicom_port, [radiograph(chest_images[0])]) == [0]
        wait_until(lambda: healthz(node.http_port)[0] == 503, "health reports the stall", timeout=10)
        problems = healthz(node.http_port)[1]["problems"]
        assert len(problems) == 1 and "1 image(s) waiting and nothing completed" in problems[0]
    wait_until(lambda: healthz(node.http_port)[0] == 200, "health recovers once work moves again")


def test_the_instant_healthz_answers_200_predictions_are_taken(start_node, chest_images, monkeypatch):
    """A second "ready" flag, set only after the HTTP listener opened, made the first uploads of a loaded
    machine 503 while /healthz already answered 200. One flag now; this asks at the listener's first instant."""
    from medtk.serve import ServeNode

    answers = {}
    open_listener = ServeNode._start_http

    def open_and_ask(node: ServeNode) -> None:
        open_listener(node)
        base = f"http://127.0.0.1:{node.http_port}"
        answers["healthz"] = httpx.get(f"{base}/healthz", timeout=10).status_code
        answers["predict"] = httpx.post(f"{base}/v1/predict", content=cv2.imencode(".png", chest_images[0])[1].tobytes(),
                                        headers={"Content-Type": "image/png"}, timeout=30).status_code

    monkeypatch.setattr(ServeNode, "_start_http", open_and_ask)
    start_node()
    assert answers == {"healthz": 200, "predict": 200}


def test_a_thread_that_ends_is_reported(start_node, caplog):
    node = start_node()
    with caplog.at_level(logging.CRITICAL, logger="medtk.serve.threads"):
        node.queue.submit_recovered(lambda: sys.exit(3))  # a job that ends its worker thread (SystemExit)
        wait_until(lambda: healthz(node.http_port)[0] == 503, "health reports the dead worker", timeout=10)
    assert healthz(node.http_port)[1]["problems"] == ["thread medtk-serve-worker-0 has stopped"]
    assert "thread medtk-serve-worker-0 ended unexpectedly (SystemExit)" in caplog.text
    assert "medtk_serve_ready 0.0" in node.metrics.render().decode()


def test_too_little_free_disk_is_reported(start_node):
    node = start_node(min_free_bytes=2**60)
    code, body = healthz(node.http_port)
    assert code == 503 and "less than --min-free-bytes" in body["problems"][0]


@pytest.mark.slow
def test_a_destination_that_is_down_is_reported_while_the_node_stays_ready(start_node, chest_images):
    down = Destination("NOBODY", "127.0.0.1", free_port())
    node = start_node(forward=(down,))
    assert send_datasets(node.dicom_port, [radiograph(chest_images[0])]) == [0]
    wait_until(lambda: healthz(node.http_port)[1]["destinations"][str(down)]["state"] == "retrying",
               "the destination is retried")
    code, body = healthz(node.http_port)
    state = body["destinations"][str(down)]
    assert code == 200 and body["status"] == "ready"
    assert state["pending"] == 2 and state["problem"] == "association rejected or no answer"
    metrics = node.metrics.render().decode()
    assert "medtk_serve_ready 1.0" in metrics and f'medtk_serve_destination_up{{destination="{down}"}} 0.0' in metrics


@pytest.mark.parametrize("seconds", [0, float("nan"), float("inf")])
def test_stall_seconds_is_bounded(tmp_path, seconds):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match="--stall-seconds"):
        ServeConfig(model=model, stall_seconds=seconds).validate()
