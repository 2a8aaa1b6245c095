"""The HTTP API over a real uvicorn server on loopback: predict, model card, health, metrics, limits."""

from __future__ import annotations

import base64

import cv2
import httpx
import numpy as np
import pytest

from medtk.runtime import Classifier


def _url(node, path: str) -> str:
    return f"http://127.0.0.1:{node.http_port}{path}"


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def test_predict_png_matches_the_runtime(start_node, serve_models, chest_images, tmp_path):
    node = start_node()
    body = _png(chest_images[5])
    response = httpx.post(_url(node, "/v1/predict"), content=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    answer = response.json()
    path = tmp_path / "x.png"
    path.write_bytes(body)
    expected = Classifier(serve_models["op"], num_threads=1).predict(path)
    assert answer["label"] == expected.label
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)
    assert answer["threshold"] == 0.4 and answer["positive"] == expected.positive
    assert answer["positive"] == (answer["probabilities"]["pneumonia"] >= 0.4)
    assert answer["positive_class"] == "pneumonia" and "cam_overlay_png" not in answer


def test_predict_dicom_with_cam(start_node, dicom_files):
    node = start_node()
    response = httpx.post(_url(node, "/v1/predict?cam=1"), content=dicom_files["ct"].read_bytes(),
                          headers={"Content-Type": "application/dicom"})
    assert response.status_code == 200, response.text
    png = base64.b64decode(response.json()["cam_overlay_png"])
    overlay = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (128, 128, 3)  # CT_small is 128x128


def test_model_without_operating_point_uses_argmax(start_node, dicom_files):
    node = start_node("argmax")
    answer = httpx.post(_url(node, "/v1/predict"), content=dicom_files["cr"].read_bytes(),
                        headers={"Content-Type": "application/dicom"}).json()
    assert answer["threshold"] is None
    assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    card = httpx.get(_url(node, "/v1/model")).json()
    assert card["operating_point"] is None and card["labels"] == ["normal", "pneumonia"]


def test_model_card_health_and_metrics(start_node):
    node = start_node()
    card = httpx.get(_url(node, "/v1/model")).json()
    assert card["operating_point"] == {"rule": "threshold:0.4", "threshold": 0.4}
    assert card["positive_class"] == "pneumonia" and card["input"]["size"] == 64
    assert (card["interpreters"], card["threads"]) == (1, 1)  # the fixture: --workers 1 --threads 1
    assert len(card["weights_sha256"]) == 64 and card["versions"]["backend"]["name"]
    assert httpx.get(_url(node, "/healthz")).status_code == 200
    httpx.post(_url(node, "/v1/predict"), content=b"not an image", headers={"Content-Type": "image/png"})
    text = httpx.get(_url(node, "/metrics")).text
    assert 'medtk_serve_http_requests_total{code="400",endpoint="/v1/predict"} 1.0' in text
    assert "medtk_serve_queue_depth " in text and "medtk_serve_queue_capacity 16.0" in text
    assert "# TYPE medtk_serve_latency_seconds histogram" in text


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"GIF89a", "image/gif", 415),
        (b"", "image/png", 400),
        (b"\x89PNG\r\n\x1a\n broken", "image/png", 400),
        (b"DICM" * 10, "application/dicom", 400),
    ],
)
def test_bad_requests_do_not_stop_the_node(start_node, chest_images, body, content_type, status):
    node = start_node()
    response = httpx.post(_url(node, "/v1/predict"), content=body, headers={"Content-Type": content_type})
    assert response.status_code == status and "error" in response.json()
    ok = httpx.post(_url(node, "/v1/predict"), content=_png(chest_images[0]), headers={"Content-Type": "image/png"})
    assert ok.status_code == 200


def test_limits_on_body_and_pixels(start_node):
    node = start_node(max_body_bytes=4096, max_pixels=10_000)
    large = _png(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    assert len(large) > 4096
    assert httpx.post(_url(node, "/v1/predict"), content=large, headers={"Content-Type": "image/png"}).status_code == 413
    wide = _png(np.zeros((10, 2000), np.uint8))  # small file, 20,000 pixels: refused before decoding
    response = httpx.post(_url(node, "/v1/predict"), content=wide, headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and "over the limit" in response.json()["error"]


def test_full_queue_answers_503_with_retry_after(start_node, chest_images):
    node = start_node(queue_size=2)
    node.queue.reserve()
    node.queue.reserve()  # as if two images were being processed
    try:
        response = httpx.post(_url(node, "/v1/predict"), content=_png(chest_images[0]),
                              headers={"Content-Type": "image/png"})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    finally:
        node.queue.release()
        node.queue.release()
    ok = httpx.post(_url(node, "/v1/predict"), content=_png(chest_images[0]), headers={"Content-Type": "image/png"})
    assert ok.status_code == 200


def test_bearer_token(start_node, tmp_path, chest_images):
    token = "s3cret-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    node = start_node(token_file=tmp_path / "token")
    body, png = _png(chest_images[0]), {"Content-Type": "image/png"}
    assert httpx.post(_url(node, "/v1/predict"), content=body, headers=png).status_code == 401
    assert httpx.get(_url(node, "/v1/model"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(_url(node, "/metrics")).status_code == 401
    assert httpx.get(_url(node, "/healthz")).status_code == 200  # probes need no token
    authorized = {**png, "Authorization": f"Bearer {token}"}
    assert httpx.post(_url(node, "/v1/predict"), content=body, headers=authorized).status_code == 200


def test_responses_are_not_held_back_by_nagle(start_node):
    """Every accepted connection has TCP_NODELAY: with Nagle on, each keep-alive response's body waited
    ~40 ms for the client's delayed ACK (asyncio only sets it on sockets created as IPPROTO_TCP)."""
    import http.client
    import socket

    node = start_node()
    connection = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
    try:
        for _ in range(2):  # the same keep-alive connection
            connection.request("GET", "/healthz")
            assert connection.getresponse().read() == b'{"status":"ready"}'
        accepted = [c.transport.get_extra_info("socket") for c in node._http.server_state.connections]
        assert accepted, "the server holds no open connection"
        assert all(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for sock in accepted)
    finally:
        connection.close()


def test_a_failed_variant_is_refused_before_anything_is_created(failed_variant, tmp_path):
    from medtk.errors import ModelError
    from medtk.serve import ServeConfig, ServeNode

    spool = tmp_path / "spool"
    with pytest.raises(ModelError) as refused:
        ServeNode(ServeConfig(model=failed_variant, http_port=0, dicom_port=0, spool=spool, workers=1, threads=1))
    assert str(refused.value) == (f"{failed_variant}: variant float32 failed compress's quality gate (max_auc_drop 0.07 "
                                  "> 0.01); refusing to serve it: deploy the variant compress recommends, or pass "
                                  "--allow-failed-variant to serve this one anyway")
    assert not spool.exists()


def test_a_failed_variant_served_when_allowed_says_so_in_health_metrics_and_the_model_card(
        start_node, failed_variant, chest_images, medtk_log):
    node = start_node(failed_variant, allow_failed_variant=True)
    health = httpx.get(_url(node, "/healthz"))
    assert health.status_code == 200  # the operator chose to serve it: a warning, not a reason to be unready
    (warning,) = health.json()["warnings"]
    assert "failed compress's quality gate (max_auc_drop 0.07 > 0.01); served anyway (--allow-failed-variant)" in warning
    assert warning in medtk_log.text
    assert "medtk_serve_model_gate_failed 1.0" in httpx.get(_url(node, "/metrics")).text
    card = httpx.get(_url(node, "/v1/model")).json()
    assert card["quality_gate"] == {"passed": False, "failures": [{"gate": "max_auc_drop", "measured": 0.07,
                                                                   "limit": 0.01}]}
    assert httpx.post(_url(node, "/v1/predict"), content=_png(chest_images[0]),
                      headers={"Content-Type": "image/png"}).status_code == 200
    passing = start_node()
    assert "warnings" not in httpx.get(_url(passing, "/healthz")).json()
    assert "medtk_serve_model_gate_failed 0.0" in httpx.get(_url(passing, "/metrics")).text
