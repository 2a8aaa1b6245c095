"""No header value in the logs, ever: malformed numeric elements and dates holding a patient-name-like
string, sent over C-STORE and HTTP with every logger at DEBUG, never show up in a log record, on
stderr, in an HTTP body or in /metrics; a malformed header is a DICOM status or a 400, never a 500."""

from __future__ import annotations

import logging
import warnings

import httpx
import numpy as np
import pytest
from tests.serve.serve_helpers import (NodeProcess, dicom_bytes, free_port, radiograph, running_node, send_datasets,
                                       wait_outbox, wait_until, with_metadata)

from medtk.serve.scp import CANNOT_UNDERSTAND

NAME, PATIENT = "Yamada^Taro", "Tanaka^Hanako"  # in malformed elements; the patient's own name
LIBRARIES = ("pydicom", "pynetdicom", "highdicom", "uvicorn")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with any traceback


@pytest.fixture
def everything_logged():
    """A DEBUG handler on the root logger and every library at DEBUG; levels restored afterwards."""
    capture, root = Capture(), logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *LIBRARIES)}
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _debug_everywhere() -> None:
    for name in ("", *LIBRARIES):
        logging.getLogger(name).setLevel(logging.DEBUG)


def _malformed() -> dict:
    """CRs with a patient-name-like string where a number or a date belongs (written raw: pydicom
    refuses to make such elements, senders do not)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    def cr(index: int, **raw: tuple[str, str]):
        ds = radiograph(np.full((32, 32), 60 + index, np.uint8))
        ds.PatientName = PATIENT
        for keyword, (vr, text) in raw.items():
            value = text.encode("ascii") + b" " * (len(text) % 2)
            ds[Tag(keyword)] = RawDataElement(Tag(keyword), vr, len(value), value, 0, False, True)
        return ds

    return {"frames": cr(0, NumberOfFrames=("IS", NAME)),  # a multi-frame count that is a name
            "rows": cr(1, Rows=("LO", NAME)),  # Rows as text
            "dates": cr(2, PatientBirthDate=("DA", NAME), StudyDate=("DA", NAME))}  # the image itself is fine


def _send_everything(dicom_port: int, http_url: str, spool_root: str) -> list[str]:
    """Each malformed header over C-STORE and HTTP; the HTTP bodies (answers, /metrics, /v1/model)."""
    datasets = _malformed()
    assert send_datasets(dicom_port, list(datasets.values())) == [CANNOT_UNDERSTAND, CANNOT_UNDERSTAND, 0]
    bodies = []
    for name, ds in datasets.items():
        response = httpx.post(f"{http_url}/v1/predict", content=dicom_bytes(ds),
                              headers={"Content-Type": "application/dicom"}, timeout=30)
        assert response.status_code == (200 if name == "dates" else 400), response.text
        assert spool_root not in response.text and "/http/" not in response.text
        bodies.append(response.text)
    return bodies + [httpx.get(f"{http_url}/metrics").text, httpx.get(f"{http_url}/v1/model").text]


def _assert_clean(text: str, where: str) -> None:
    for secret in (NAME, "Yamada", PATIENT, "Tanaka"):
        assert secret not in text, f"{secret!r} in {where}: {text[:3000]}"


@pytest.mark.slow
def test_header_values_reach_no_log_record_no_body_and_no_metric(everything_logged, serve_models, tmp_path):
    model = with_metadata(serve_models["op"], tmp_path / "card.tflite", intended_use=(
        "Research use on images like the training data (/srv/hospital/exports/train.csv) only"))
    factory, shown = logging.getLogRecordFactory(), warnings.showwarning
    with running_node(model, tmp_path / "spool") as node:
        _debug_everywhere()
        bodies = _send_everything(node.dicom_port, f"http://127.0.0.1:{node.http_port}", str(node.spool.root))
        wait_outbox(node, 2)
    assert (logging.getLogRecordFactory(), warnings.showwarning) == (factory, shown)  # the policy left with the node
    assert "/srv/" not in bodies[-1] and str(tmp_path) not in bodies[-1] and "(a local data set)" in bodies[-1]
    for body in bodies:
        _assert_clean(body, "an HTTP body")
    _assert_clean("\n".join(everything_logged.lines), "the log")
    assert any("message withheld" in line for line in everything_logged.lines)  # the libraries did speak


@pytest.mark.slow
def test_the_node_process_log_at_debug_holds_no_header_value(serve_models, tmp_path):
    """The whole of what `medtk serve --log-level DEBUG` writes (logs, printed warnings, tracebacks)."""
    node = NodeProcess(serve_models["op"], tmp_path / "spool", tmp_path / "node.log", free_port(), free_port(),
                       args=("--log-level", "DEBUG", "--workers", "1", "--threads", "1")).start()
    try:
        _send_everything(node.dicom_port, f"http://127.0.0.1:{node.http_port}", str(tmp_path / "spool"))
        wait_until(lambda: len(list((tmp_path / "spool" / "outbox").glob("*.dcm"))) >= 2, "results of the dated CR")
    finally:
        node.stop()
    text = (tmp_path / "node.log").read_text(errors="replace")
    assert "DEBUG" in text  # every logger spoke at DEBUG; none of it may quote a header (below)
    _assert_clean(text, "the node's log")
