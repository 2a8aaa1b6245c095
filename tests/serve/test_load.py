"""Concurrent DICOM senders and HTTP clients on loopback: nothing fails, everything arrives, RSS bounded.

The senders are dcmtk storescu processes, as modalities are; a pynetdicom SCU has a known race under
CPU load where its reactor thread takes the C-STORE response (pydicom/pynetdicom#842, #850).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import pytest
from pydicom.uid import generate_uid
from tests.serve.serve_helpers import NodeProcess, free_port, radiograph, storescu

pytestmark = pytest.mark.slow

SENDERS, PER_SENDER, CLIENTS, PER_CLIENT = 3, 8, 3, 8


def test_concurrent_senders_and_clients(tmp_path, serve_models, chest_images, orthanc):
    node = NodeProcess(serve_models["op"], tmp_path / "spool", tmp_path / "node.log", free_port(), free_port(),
                       args=("--forward", orthanc.destination, "--workers", "2", "--threads", "1",
                             "--queue-size", "64"))  # holds the whole burst: C-STORE acks outpace processing
    node.start()
    try:
        url = f"http://127.0.0.1:{node.http_port}/v1/predict"
        png = cv2.imencode(".png", chest_images[0])[1].tobytes()
        assert httpx.post(url, content=png, headers={"Content-Type": "image/png"}).status_code == 200  # warm
        rss_before = node.rss_bytes()
        batches = []
        for s in range(SENDERS):
            study, batch = generate_uid(), []
            for i in range(PER_SENDER):
                path = tmp_path / f"s{s}_{i}.dcm"
                radiograph(chest_images[(s * PER_SENDER + i) % len(chest_images)], study_uid=study,
                           number=i + 1).save_as(path, enforce_file_format=True)
                batch.append(path)
            batches.append(batch)
        codes: list[int] = []
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(timeout=60) as session:
                for _ in range(PER_CLIENT):
                    status = session.post(url, content=png, headers={"Content-Type": "image/png"}).status_code
                    with lock:
                        codes.append(status)

        with ThreadPoolExecutor(SENDERS + CLIENTS) as pool:
            senders = [pool.submit(storescu, node.dicom_port, batch, f"MOD{i}") for i, batch in enumerate(batches)]
            clients = [pool.submit(client) for _ in range(CLIENTS)]
            sent = [future.result(timeout=180) for future in senders]
            for future in clients:
                future.result(timeout=180)
        for result in sent:  # storescu exits non-zero on a failed association or any refused instance
            assert result.returncode == 0, result.stdout + result.stderr
        assert codes == [200] * CLIENTS * PER_CLIENT
        orthanc.wait_for(2 * SENDERS * PER_SENDER, timeout=120)  # every result delivered
        growth = node.rss_bytes() - rss_before
        assert growth < 150 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MiB"
        metrics = httpx.get(f"http://127.0.0.1:{node.http_port}/metrics").text
        assert f'medtk_serve_images_total{{outcome="ok",source="dicom"}} {float(SENDERS * PER_SENDER)}' in metrics
    finally:
        node.stop()
    assert node.process.returncode == 0  # SIGTERM: a clean stop
