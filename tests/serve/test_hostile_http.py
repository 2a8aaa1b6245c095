"""What a stranger on the HTTP port can make the node do (issue 21): raw sockets that stall, half-open
connections and clients that leave, against a real node; startup errors through the real CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import cv2
import httpx
import pydicom
import pytest
from tests.serve.serve_helpers import LOOPBACK, NodeProcess, free_port, send_datasets, wait_until

UPLOAD = (b"POST /v1/predict HTTP/1.1\r\nHost: medtk\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
          b"\x89PN")  # headers, then 3 bytes of a 100 kB body


def _png(image) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _status(sock: socket.socket) -> int:
    """The status code of the node's answer on `sock`."""
    line = b""
    while b"\r\n" not in line:
        chunk = sock.recv(1024)
        assert chunk, "closed without an answer"
        line += chunk
    return int(line.split(b" ", 2)[1])


def _closed(sock: socket.socket) -> bool:
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_stalled_uploads_hold_no_work_slot_and_time_out(start_node, dicom_files, chest_images):
    """Sixteen uploads that stall after 3 bytes: before, each held a queue slot for as long as it liked
    (every C-STORE 0xA700, every prediction 503). Now bodies are read before any slot is taken, at most
    --max-uploads at once, each within --http-body-timeout."""
    node = start_node(queue_size=2, max_uploads=2, http_body_timeout=2.0)
    stalled = [socket.create_connection((LOOPBACK, node.http_port), timeout=10) for _ in range(16)]
    try:
        started = time.monotonic()
        for sock in stalled:
            sock.sendall(UPLOAD)
        assert httpx.get(f"http://{LOOPBACK}:{node.http_port}/healthz", timeout=5).status_code == 200
        assert send_datasets(node.dicom_port, [pydicom.dcmread(dicom_files["cr"])]) == [0x0000]
        statuses = sorted(_status(sock) for sock in stalled)
        assert statuses == [408, 408] + [503] * 14  # two read until the deadline, the others refused at once
        assert time.monotonic() - started < 8
    finally:
        for sock in stalled:
            sock.close()
    response = httpx.post(f"http://{LOOPBACK}:{node.http_port}/v1/predict", content=_png(chest_images[0]),
                          headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code == 200, response.text
    metrics = httpx.get(f"http://{LOOPBACK}:{node.http_port}/metrics").text
    assert 'medtk_serve_http_requests_total{code="408",endpoint="/v1/predict"} 2.0' in metrics


def test_half_open_connections_cannot_deny_health_or_predictions(start_node, chest_images):
    """70 connections that sent half a request line made /healthz answer 503 to everyone (uvicorn's
    limit_concurrency counts them). Now a new connection closes the oldest idle one, and each is closed
    --http-header-timeout after it opened."""
    node = start_node(http_header_timeout=2.0)  # --max-http-connections 64
    half_open = [socket.create_connection((LOOPBACK, node.http_port), timeout=10) for _ in range(70)]
    try:
        started = time.monotonic()
        for sock in half_open:
            sock.sendall(b"GET /hea")
        base = f"http://{LOOPBACK}:{node.http_port}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.post(f"{base}/v1/predict", content=_png(chest_images[1]), headers={"Content-Type": "image/png"},
                          timeout=30).status_code == 200
        assert all(_closed(sock) for sock in half_open)
        assert time.monotonic() - started < 4
    finally:
        for sock in half_open:
            sock.close()


def test_a_keep_alive_connection_that_trickles_its_next_request_is_closed(start_node):
    """uvicorn's keep-alive timer restarts with every byte; the header deadline does not."""
    node = start_node(http_header_timeout=1.0)
    with socket.create_connection((LOOPBACK, node.http_port), timeout=0.3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: medtk\r\n\r\n")
        assert _status(sock) == 200
        started = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(20):  # a byte every 0.25 s, never a whole request line
                sock.sendall(b"G")
                time.sleep(0.25)
                try:
                    if sock.recv(4096) == b"":
                        raise ConnectionResetError("closed by the node")
                except TimeoutError:
                    continue
        assert time.monotonic() - started < 3


@pytest.mark.slow
def test_a_client_leaving_mid_upload_is_one_log_line(serve_models, tmp_path):
    node = NodeProcess(serve_models["op"], tmp_path / "spool", tmp_path / "node.log", free_port(), free_port(),
                       args=("--workers", "1", "--threads", "1")).start()
    try:
        for _ in range(3):
            with socket.create_connection((LOOPBACK, node.http_port), timeout=10) as sock:
                sock.sendall(UPLOAD)
        metrics = f"http://{LOOPBACK}:{node.http_port}/metrics"
        wait_until(lambda: 'code="499",endpoint="/v1/predict"} 3.0' in httpx.get(metrics).text,
                   "three uploads counted as ended by the client", timeout=10)
    finally:
        node.stop()
    log = (tmp_path / "node.log").read_text()
    assert log.count("ended by the client before its body was complete") == 3
    assert "Traceback" not in log and "Exception in ASGI application" not in log


@pytest.mark.parametrize("case", ["port in use", "address not on this machine"])
def test_an_http_listener_that_cannot_open_is_one_line_and_exit_2(serve_models, tmp_path, case):
    with socket.create_server((LOOPBACK, 0)) as taken:
        port = taken.getsockname()[1]
        host = LOOPBACK if case == "port in use" else "192.0.2.1"  # TEST-NET-1: never an address of this machine
        result = subprocess.run([sys.executable, "-m", "medtk", "serve", str(serve_models["op"]), "--no-dicom",
                                 "--host", host, "--http-port", str(port), "--spool", str(tmp_path / "spool")],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("medtk: error:")]
    expected = (f"--http-port {port}: cannot listen on {host}:{port} (the port is in use)" if case == "port in use"
                else f"--host {host}: cannot listen on {host}:{port} (not an address of this machine)")
    assert errors == [f"medtk: error: {expected}"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("field", "value", "option"), [
    ("max_pdu_bytes", 100, "--max-pdu-bytes"),
    ("max_dataset_bytes", 8 * 1024**3, "--max-dataset-bytes"),
    ("max_uploads", 0, "--max-uploads"),
    ("http_header_timeout", float("nan"), "--http-header-timeout"),
    ("http_body_timeout", float("inf"), "--http-body-timeout"),
    ("http_body_timeout", 0.0, "--http-body-timeout"),
])
def test_network_bounds_are_validated(serve_models, field, value, option):
    from medtk.errors import ConfigError
    from medtk.serve import ServeConfig

    with pytest.raises(ConfigError, match=f"^{option} {value}: must be"):
        ServeConfig(model=serve_models["op"], **{field: value}).validate()
