"""Real parts for the `medtk serve` tests: DICOM inputs, an Orthanc PACS, a node as a subprocess.

A plain module (not a conftest) so the benchmark can use it too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def with_operating_point(bare: Path, reference: Path, out: Path, positive: str = "pneumonia",
                         threshold: float = 0.4) -> Path:
    """`reference`'s metadata plus a positive class and an operating point, embedded into `bare`."""
    from medtk.runtime.metadata import OperatingPoint, embed_metadata, read_metadata

    metadata = read_metadata(reference.read_bytes())
    metadata = replace(metadata, positive_class=positive,
                       operating_point=OperatingPoint(rule=f"threshold:{threshold}", threshold=threshold))
    out.write_bytes(embed_metadata(bare.read_bytes(), metadata))
    return out


# -- DICOM inputs ---------------------------------------------------------------------------------
def radiograph(pixels: np.ndarray, *, modality: str = "CR", study_uid: str | None = None, number: int = 1,
               transfer_syntax: str | None = None, body_part: str = "CHEST"):
    """A CR (or DX) dataset holding a real image, with made-up patient identifiers."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = {"CR": "1.2.840.10008.5.1.4.1.1.1", "DX": "1.2.840.10008.5.1.4.1.1.1.1"}[modality]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[ds.StudyInstanceUID, modality])
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Patient", "MEDTK-0001", "19700101", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "20240101", "120000", "", "", "1"
    ds.Modality, ds.BodyPartExamined, ds.SeriesNumber, ds.InstanceNumber = modality, body_part, 1, number
    ds.Manufacturer = "test"
    ds.PatientOrientation = ["L", "F"]
    if modality == "DX":
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    if transfer_syntax is not None:
        ds.compress(transfer_syntax)
    return ds


def pneumonia_images(npz: Path, count: int, size: int = 128) -> np.ndarray:
    """`count` PneumoniaMNIST test images at `size`x`size` (the larger file if present)."""
    import cv2

    data = np.load(npz)
    images = data["test_images"][:count]
    if images.shape[1] != size:
        images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in images])
    return images


# -- Orthanc ----------------------------------------------------------------------------------------
@dataclass
class Orthanc:
    """An Orthanc started for one test: its own config, storage, loopback-only access and ports."""

    folder: Path
    http_port: int
    dicom_port: int
    allowed_ae: str = "MEDTK"
    ae_title: str = "ORTHANC"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def destination(self) -> str:
        return f"{self.ae_title}@{LOOPBACK}:{self.dicom_port}"

    def start(self, timeout: float = 30.0) -> "Orthanc":
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "medtk-test", "StorageDirectory": str(self.folder / "db"), "IndexDirectory": str(self.folder / "db"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpServerEnabled": True,
            "DicomServerEnabled": True, "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowEcho": False, "DicomCheckModalityHost": True,
            "DicomModalities": {"medtk": [self.allowed_ae, LOOPBACK, 104]},
            "OverwriteInstances": True, "Plugins": [], "ConcurrentJobs": 1, "HttpThreadsCount": 4,
            "DicomThreadsCount": 2, "StorageCompression": False, "SaveJobs": False, "DeidentifyLogs": True,
        }
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        log = open(self.folder / "orthanc.log", "wb")
        self.process = subprocess.Popen(["Orthanc", str(self.folder / "orthanc.json")], stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.get("/system")
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body = response.read()
        return json.loads(body) if response.headers.get_content_type() == "application/json" else body

    def instances(self) -> list[str]:
        return self.get("/instances")

    def dataset(self, orthanc_id: str):
        import io

        import pydicom

        return pydicom.dcmread(io.BytesIO(self.get(f"/instances/{orthanc_id}/file")))

    def datasets_by_modality(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for orthanc_id in self.instances():
            ds = self.dataset(orthanc_id)
            out.setdefault(str(ds.Modality), []).append(ds)
        return out

    def wait_for(self, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.instances()
            if len(ids) >= count:
                return ids
            time.sleep(0.2)
        raise AssertionError(f"Orthanc holds {len(self.instances())} instances, expected {count}")


# -- the node as a process (kill -9 and RSS need one) ---------------------------------------------
@dataclass
class NodeProcess:
    model: Path
    spool: Path
    log: Path
    http_port: int
    dicom_port: int
    args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "NodeProcess":
        command = [sys.executable, "-m", "medtk", "serve", str(self.model), "--host", LOOPBACK,
                   "--http-port", str(self.http_port), "--dicom-port", str(self.dicom_port),
                   "--spool", str(self.spool), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"medtk serve exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"medtk serve did not become ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no cleanup, no flush, as a power cut would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_bytes(self) -> int:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss


def received(folder: Path, data: bytes) -> Path:
    """A data set as the Storage SCP hands it to admission: a file outside the spool (pynetdicom's, in $TMPDIR)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix="received-", suffix=".dcm")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    return Path(name)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds: the node acts in its own threads, after the event a test observed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def wait_outbox(node, count: int, timeout: float = 30.0) -> list:
    """The outbox's results once at least `count` are there and the node's queue is empty."""
    import pydicom

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(node.spool.outbox.glob("*.dcm"))
        if len(files) >= count and node.queue.depth == 0:
            return [pydicom.dcmread(f) for f in files]
        time.sleep(0.05)
    raise AssertionError(f"{len(list(node.spool.outbox.glob('*.dcm')))} results in the outbox, expected {count}")


def send_datasets(port: int, datasets, calling_ae: str = "TESTSCU", called_ae: str = "MEDTK") -> list[int]:
    """C-STORE each dataset over one association (pynetdicom SCU); the statuses, in order."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    association = ae.associate(LOOPBACK, port, ae_title=called_ae)
    if not association.is_established:
        raise ConnectionError(f"association with {called_ae}@{LOOPBACK}:{port} failed")
    try:
        return [int(association.send_c_store(ds).Status) for ds in datasets]
    finally:
        association.release()


def storescu(port: int, files: list[Path], calling_ae: str = "STORESCU", called_ae: str = "MEDTK",
             extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """dcmtk's storescu, as a modality would send (`extra`: e.g. --propose-jpeg8)."""
    if shutil.which("storescu") is None:
        raise AssertionError("dcmtk's storescu is missing: install dcmtk (.ci/system-deps)")
    return subprocess.run(["storescu", *extra, "-aet", calling_ae, "-aec", called_ae, LOOPBACK, str(port),
                           *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def iter_sr_items(ds) -> Iterator:
    """Every content item of an SR, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from iter_sr_items(item)


# -- faults made real: a destination that answers as the test says (issue 21; the small disk: tests/disk_faults.py)


@dataclass
class RecordingSCP:
    """A pynetdicom Storage SCP a test starts as a destination: it accepts only `sop_classes`, answers
    each C-STORE with `answer(dataset)` and records every attempt (SOP Instance UID, status)."""

    answer: Callable[[object], int] = lambda dataset: 0x0000
    sop_classes: tuple[str, ...] = ("Comprehensive3DSRStorage", "SecondaryCaptureImageStorage")
    ae_title: str = "RECORDER"
    attempts: list[tuple[str, int]] = field(default_factory=list)
    port: int = 0

    def start(self) -> "RecordingSCP":
        from pynetdicom import AE, evt, sop_class

        ae = AE(ae_title=self.ae_title)
        for name in self.sop_classes:
            ae.add_supported_context(getattr(sop_class, name))
        self._server = ae.start_server((LOOPBACK, self.port), block=False,
                                       evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        self._server.shutdown()

    @property
    def destination(self):
        from medtk.serve.config import Destination

        return Destination(self.ae_title, LOOPBACK, self.port)

    def stored(self) -> list[str]:
        """SOP Instance UIDs answered with success, once per success."""
        return [uid for uid, status in list(self.attempts) if status == 0]

    def tries(self, uid: str) -> int:
        return sum(1 for seen, _ in list(self.attempts) if seen == uid)

    def _on_store(self, event) -> int:
        dataset = event.dataset
        status = self.answer(dataset)
        self.attempts.append((str(dataset.SOPInstanceUID), status))
        return status


def first_answers(count: int, status: int) -> Callable[[object], int]:
    """An `answer` giving `status` to the first `count` C-STOREs, then success."""
    seen = itertools.count()
    return lambda dataset: status if next(seen) < count else 0x0000


def healthz(port: int) -> tuple[int, dict]:
    """GET /healthz: the status code and the JSON body."""
    import httpx

    response = httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=10)
    return response.status_code, response.json()


# -- issue 21: results that say what the runtime says, without patient data in the logs ------------
def with_metadata(model: Path, out: Path, intensity: dict | None = None, **fields) -> Path:
    """`model` with metadata fields replaced, and fields of its intensity record (what training saw, which
    the node checks every image against: e.g. intensity={"modalities": ("CR", "DX")})."""
    from medtk.runtime.metadata import embed_metadata, read_metadata

    data = model.read_bytes()
    metadata = read_metadata(data)
    metadata = replace(metadata, intensity=replace(metadata.intensity, **(intensity or {})), **fields)
    out.write_bytes(embed_metadata(data, metadata))
    return out


def dicom_bytes(ds) -> bytes:
    """A data set as a Part 10 file (as a sender or an HTTP client would send it)."""
    import io

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dciodvfy_findings(path: Path) -> list[str]:
    """dciodvfy's "Error" and "Warning" lines for one file (dicom3tools, .ci/system-deps)."""
    if shutil.which("dciodvfy") is None:
        raise AssertionError("dciodvfy is missing: install dicom3tools (.ci/system-deps)")
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(("Error", "Warning"))]


@contextlib.contextmanager
def running_node(model: Path, spool: Path, **overrides) -> Iterator:
    """An in-process node on free loopback ports for a model of the test's own (conftest's `start_node`
    takes the session's models by name), stopped afterwards."""
    from medtk.serve import ServeConfig, ServeNode

    options = dict(model=model, host=LOOPBACK, http_port=0, dicom_port=0, spool=spool, workers=1, threads=1,
                   min_free_bytes=0)
    node = ServeNode(ServeConfig(**{**options, **overrides})).start()
    try:
        yield node
    finally:
        node.stop()

# -- hostile peers (issue 21) -------------------------------------------------------------------------
PRIVATE_GROUP = 0x0009  # a private group between (0008,xxxx) and (0010,xxxx), so elements stay in tag order


def association_request(called_ae: str = "MEDTK", calling_ae: str = "HOSTILE") -> bytes:
    """A well-formed A-ASSOCIATE-RQ PDU proposing Verification, as bytes to send by hand."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, ImplementationClassUIDNotification, MaximumLengthNotification
    from pynetdicom.presentation import build_context

    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title, primitive.called_ae_title = calling_ae, called_ae
    context = build_context("1.2.840.10008.1.1")
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    maximum, implementation = MaximumLengthNotification(), ImplementationClassUIDNotification()
    maximum.maximum_length_received = 16382
    implementation.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.4"
    primitive.user_information = [maximum, implementation]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def padded_instance(path: Path, pixels: np.ndarray, padding: int, deflated: bool = False) -> Path:
    """A CR file whose data set carries `padding` zero bytes in a private OB element, written in 1 MiB
    steps (never whole in memory); `deflated`: in Deflated Explicit VR Little Endian, ~1 kB per MiB."""
    import zlib

    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO, DicomFileLike
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = radiograph(pixels)
    if deflated:
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    before, after = Dataset(), Dataset()
    for elem in ds:
        (before if elem.tag.group < PRIVATE_GROUP else after).add(elem)
    before.add_new((PRIVATE_GROUP, 0x0010), "LO", "MEDTK TEST PADDING")

    def encoded(part) -> bytes:
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_dataset(buffer, part)
        return buffer.getvalue()

    head, tail = encoded(before) + ob_header((PRIVATE_GROUP, 0x1010), padding), encoded(after)
    mebibytes, rest = divmod(padding, 1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # after a full flush the compressor starts afresh: one compressed MiB of zeros repeats as it is
    piece = (lambda data: deflate.compress(data) + deflate.flush(zlib.Z_FULL_FLUSH)) if deflated else bytes
    with open(path, "wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(DicomFileLike(out), ds.file_meta)
        out.write(piece(head))
        mebibyte = piece(bytes(1 << 20))
        for _ in range(mebibytes):
            out.write(mebibyte)
        out.write(piece(bytes(rest) + tail))
        if deflated:
            out.write(deflate.flush())
    return path


def ob_header(tag: tuple[int, int], length: int) -> bytes:
    """The Explicit VR Little Endian header of an OB element of `length` bytes."""
    import struct

    return struct.pack("<HH2sHL", tag[0], tag[1], b"OB", 0, length)


def send_files(port: int, paths: list[Path], calling_ae: str = "TESTSCU", called_ae: str = "MEDTK",
               answer_within: float = 30.0) -> list[int | None]:
    """C-STORE each file as it is on disk (pynetdicom streams it, deflated or not) over one association;
    the statuses in order, None for a C-STORE the node ended by closing the association (pynetdicom may
    notice that only when `answer_within` seconds have passed without an answer)."""
    from pydicom.filereader import read_file_meta_info
    from pynetdicom import AE, _config

    ae = AE(ae_title=calling_ae)
    for path in paths:
        meta = read_file_meta_info(path)  # not the data set: a deflated one would be inflated whole
        ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
    ae.acse_timeout = ae.network_timeout = 30
    ae.dimse_timeout = answer_within
    association = ae.associate(LOOPBACK, port, ae_title=called_ae)
    if not association.is_established:
        raise ConnectionError(f"association with {called_ae}@{LOOPBACK}:{port} failed")
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        statuses: list[int | None] = []
        for path in paths:
            answer = association.send_c_store(path) if association.is_established else None
            statuses.append(int(answer.Status) if answer is not None and "Status" in answer else None)
        return statuses
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        if association.is_established:
            association.release()


def peak_growth(pid: int, action: Callable[[], object]) -> tuple[object, int]:
    """What `action` returns, and by how many bytes process `pid`'s resident memory peaked above its
    level before (its high-water mark, VmHWM, is reset first: a peak at startup would hide a smaller one)."""
    status = Path(f"/proc/{pid}/status")

    def field(name: str) -> int:
        return int(next(line for line in status.read_text().splitlines() if line.startswith(name)).split()[1]) * 1024

    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = field("VmRSS:")
    result = action()
    return result, field("VmHWM:") - before
