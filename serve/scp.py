"""The Storage SCP: pynetdicom on the DICOM port, answering each C-STORE only once its fate is known.

The handler checks the header (identifiers, pixel data, size, a decodable transfer syntax), asks the
selection rules, and hands accepted instances to `admit`, which reserves a queue slot and writes the
spool durably; only then does the sender get 0x0000. Statuses (PS3.4 B.2.3):

    0x0000  stored (and will be processed, or skipped by the rules)
    0xA700  out of resources: queue full or disk nearly full; the sender retries later
    0xA900  data set does not match the SOP class (no pixel data, missing identifiers)
    0xC000  cannot understand (unreadable, too many pixels, a layout the runtime cannot decode)
"""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import dataclass
from typing import Any, Callable

from medtk.serve.rules import Rules
from medtk.serve.tcp import nagle_off, quick_ack_context, tuned
from medtk.serve.uids import uid_tag

log = logging.getLogger(__name__)

SUCCESS, OUT_OF_RESOURCES, NOT_MATCHING, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xA900, 0xC000

# Single-frame image storage a 2-D classifier can read (multi-frame colour and enhanced objects are not).
STORAGE_CLASSES = (
    "ComputedRadiographyImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing",
    "DigitalMammographyXRayImageStorageForPresentation",
    "DigitalMammographyXRayImageStorageForProcessing",
    "UltrasoundImageStorage",
    "SecondaryCaptureImageStorage",
    "CTImageStorage",
    "MRImageStorage",
)
TRANSFER_SYNTAXES = (
    "ExplicitVRLittleEndian",
    "ImplicitVRLittleEndian",
    "DeflatedExplicitVRLittleEndian",
    "ExplicitVRBigEndian",
    "JPEGBaseline8Bit",
    "JPEGExtended12Bit",
    "JPEGLossless",
    "JPEGLosslessSV1",
    "JPEGLSLossless",
    "JPEGLSNearLossless",
    "JPEG2000Lossless",
    "JPEG2000",
    "RLELossless",
)
ACSE_TIMEOUT_SECONDS = 30  # to finish association negotiation
NETWORK_TIMEOUT_SECONDS = 60  # an association idle this long is closed; also the longest a read may stall
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")

# admit(sop_instance_uid, encoded instance) -> a C-STORE status (SUCCESS or OUT_OF_RESOURCES)
Admit = Callable[[str, bytes], int]


@functools.lru_cache(maxsize=1)
def decodable_transfer_syntaxes() -> tuple[str, ...]:
    """The transfer syntaxes offered at association: only those pydicom can decode here."""
    import pydicom.uid
    from pydicom.pixels import get_decoder

    available = []
    for name in TRANSFER_SYNTAXES:
        uid = getattr(pydicom.uid, name)
        try:
            if not uid.is_compressed or get_decoder(uid).is_available:
                available.append(uid)
        except NotImplementedError:
            continue
    return tuple(available)


class ConnectionPolicy:
    """Applied to every accepted DICOM connection before pynetdicom reads from it.

    pynetdicom calls `wrap_socket` on its `ssl_context` for each accepted socket, in its accept loop,
    and nothing else on it, so this stands in for a context with or without TLS:

    - A read timeout. pynetdicom reads each PDU with blocking `recv` calls on the accepted socket, which
      has none: a client that sent a PDU header (or began a TLS handshake) and stalled held its
      association thread, one of `--max-associations`, until TCP gave up hours later. With it the read
      fails after `timeout` seconds and pynetdicom closes that association; idle associations are
      still closed by pynetdicom's own network timeout, between PDUs.
    - Nagle off and immediate ACKs (tcp.py): a sender that keeps Nagle on is not held ~40 ms per C-STORE.
    - TLS with the handshake in the association's thread. `SSLContext.wrap_socket` would handshake in
      the accept loop: one connection that never sends a ClientHello would stop the listener from
      accepting anyone else. With `do_handshake_on_connect=False` it happens on the association's first
      read, under the same timeout, and a failed handshake (plain DICOM, an untrusting client) ends only
      that association.
    """

    def __init__(self, timeout: float, context: ssl.SSLContext | None = None) -> None:
        self.timeout, self.context = timeout, None if context is None else quick_ack_context(context)

    def wrap_socket(self, sock: Any, server_side: bool = False, **_: Any) -> Any:
        sock.settimeout(self.timeout)
        if self.context is None:
            return tuned(sock)
        nagle_off(sock)  # quick ACKs come from the context's socket class
        return self.context.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False)


@dataclass
class StorageSCP:
    ae_title: str
    host: str
    port: int
    rules: Rules
    admit: Admit
    max_pixels: int
    count_status: Callable[[int], None] = lambda status: None
    allow_ae: tuple[str, ...] = ()
    max_associations: int = 8
    ssl_context: ssl.SSLContext | None = None
    ignore: Callable[[Any], bool] = lambda dataset: False  # e.g. this node's own results sent back to it

    def start(self) -> None:
        from pynetdicom import AE, evt, sop_class
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        syntaxes = decodable_transfer_syntaxes()
        for name in STORAGE_CLASSES:
            ae.add_supported_context(getattr(sop_class, name), syntaxes)
        ae.add_supported_context(Verification)
        ae.maximum_associations = self.max_associations
        ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = ACSE_TIMEOUT_SECONDS, 60, NETWORK_TIMEOUT_SECONDS
        if self.allow_ae:
            ae.require_calling_aet = list(self.allow_ae)
        self._ae = ae
        self._server = ae.start_server(
            (self.host, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
            ssl_context=ConnectionPolicy(NETWORK_TIMEOUT_SECONDS, self.ssl_context),
        )
        self.port = self._server.server_address[1]
        log.info("Storage SCP %s listening on %s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            self._server = None

    def _on_store(self, event: Any) -> Any:
        status, comment = self._decide(event)
        self.count_status(status)
        if comment:
            from pydicom.dataset import Dataset

            answer = Dataset()
            answer.Status = status
            answer.ErrorComment = comment[:64]
            return answer
        return status

    def _decide(self, event: Any) -> tuple[int, str]:
        try:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
        except Exception as error:  # pydicom raises many types for a malformed stream
            log.warning("C-STORE refused: unreadable data set (%s)", type(error).__name__)
            return CANNOT_UNDERSTAND, "unreadable data set"
        problem = check_instance(dataset, self.max_pixels)
        sop_uid = str(dataset.get("SOPInstanceUID", ""))
        if problem is not None:
            status, comment = problem
            log.warning("C-STORE refused instance %s: %s", uid_tag(sop_uid), comment)
            return status, comment
        if self.ignore(dataset) or self.rules.decide(dataset) == "skip":
            log.info("instance %s received, not selected for processing", uid_tag(sop_uid))
            return SUCCESS, ""
        status = self.admit(sop_uid, event.encoded_dataset(include_meta=True))
        if status != SUCCESS:
            return status, "queue full or disk low; retry later"
        return SUCCESS, ""


def check_instance(dataset: Any, max_pixels: int) -> tuple[int, str] | None:
    """(status, reason) when the instance cannot be processed, else None; reads the header only.

    Everything a worker would fail on deterministically is found here, before the 0x0000 (admission.py);
    a header value pydicom cannot even convert is 0xC000, never an exception in the handler (whose
    traceback would quote it).
    """
    try:
        return _header_problem(dataset, max_pixels)
    except Exception:  # pydicom raises many types for a malformed element
        return CANNOT_UNDERSTAND, "unreadable header"


def _header_problem(dataset: Any, max_pixels: int) -> tuple[int, str] | None:
    from medtk.serve import admission

    missing = [keyword for keyword in REQUIRED if keyword not in dataset]
    if "PixelData" not in dataset and "FloatPixelData" not in dataset:
        return NOT_MATCHING, "no pixel data"
    if "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset:
        return CANNOT_UNDERSTAND, "float pixel data is not supported"
    if missing:
        return NOT_MATCHING, f"missing {', '.join(missing)}"[:64]
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        return CANNOT_UNDERSTAND, "unreadable image dimensions"
    if rows < 1 or columns < 1:
        return NOT_MATCHING, "empty image"
    if rows * columns * frames > max_pixels:
        return CANNOT_UNDERSTAND, f"image over the pixel limit ({max_pixels})"
    if samples not in (1, 3) or (samples == 3 and frames > 1):
        return CANNOT_UNDERSTAND, "pixel layout not supported"
    transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
    if transfer_syntax is None or transfer_syntax not in decodable_transfer_syntaxes():
        return CANNOT_UNDERSTAND, "transfer syntax cannot be decoded here"
    return (admission.identifier_problem(dataset) or admission.character_set_problem(dataset)
            or admission.pixel_problem(dataset))
