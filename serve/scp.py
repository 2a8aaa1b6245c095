"""The Storage SCP: pynetdicom on the DICOM port, answering each C-STORE only once its fate is known.

Only associations addressed to this node's AE title are accepted. Every connection is read through
the bounds of dicom_connections.py; a data set arrives in a file (received.py), a deflated one is
inflated in bounded steps. The handler checks the header (identifiers, pixel data, size, a decodable
transfer syntax), asks the selection rules, and hands accepted instances to `admit`, which reserves a
queue slot and moves the file into the spool durably; only then does the sender get 0x0000. Statuses
(PS3.4 B.2.3):

    0x0000  stored (and will be processed, or skipped by the rules)
    0xA700  out of resources: queue full or disk nearly full; the sender retries later
    0xA900  data set does not match the SOP class (no pixel data, missing identifiers)
    0xC000  cannot understand (unreadable, too many pixels, a layout the runtime cannot decode, a
            deflated data set that inflates past --max-dataset-bytes: resending it cannot help, so
            not 0xA700, which invites a retry)
"""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from medtk.serve.dicom_connections import ConnectionPolicy, ConnectionTable, end_unrequested
from medtk.serve.inflate import InflatesTooLarge
from medtk.serve.listen import cannot_listen
from medtk.serve.pdu_guard import GuardLimits
from medtk.serve.received import discard_unfinished, read_header, readable_file, receive_into_files
from medtk.serve.rules import Rules
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
ACSE_TIMEOUT_SECONDS = 30  # from accepting a connection to its whole association request
NETWORK_TIMEOUT_SECONDS = 60  # an association idle this long is closed; also the longest a read may stall
PDU_TIMEOUT_SECONDS = 60  # from a PDU's first byte to its last, however slowly they trickle
MAX_CONTROL_BYTES = 64 * 1024  # an A-ASSOCIATE-RQ (128 contexts with their syntaxes need ~40 kB); a command set
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")

# admit(sop_instance_uid, the received instance's file) -> a C-STORE status (SUCCESS or OUT_OF_RESOURCES)
Admit = Callable[[str, Path], int]


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
    scratch: Path | None = None  # where deflated data sets are inflated (the spool's incoming/); None: $TMPDIR
    max_pdu_bytes: int = 131072
    max_dataset_bytes: int = 256 * 1024 * 1024
    count_refused: Callable[[], None] = lambda: None  # a connection closed for crossing a bound

    def start(self) -> None:
        from pynetdicom import AE, evt, sop_class
        from pynetdicom.sop_class import Verification

        receive_into_files()
        ae = AE(ae_title=self.ae_title)
        syntaxes = decodable_transfer_syntaxes()
        for name in STORAGE_CLASSES:
            ae.add_supported_context(getattr(sop_class, name), syntaxes)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = self.max_pdu_bytes  # advertised; the guard holds senders to it
        ae.require_called_aet = True
        # The connection table holds associations to max_associations; pynetdicom's own count, which
        # includes threads of connections just closed, is only a backstop.
        ae.maximum_associations = 2 * self.max_associations
        ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = ACSE_TIMEOUT_SECONDS, 60, NETWORK_TIMEOUT_SECONDS
        if self.allow_ae:
            ae.require_calling_aet = list(self.allow_ae)
        limits = GuardLimits(max_pdu_bytes=self.max_pdu_bytes, max_dataset_bytes=self.max_dataset_bytes,
                             max_control_bytes=MAX_CONTROL_BYTES, negotiation_seconds=ACSE_TIMEOUT_SECONDS,
                             pdu_seconds=PDU_TIMEOUT_SECONDS)
        policy = ConnectionPolicy(limits, NETWORK_TIMEOUT_SECONDS, ConnectionTable(self.max_associations,
                                                                                 self.count_refused),
                                  self.ssl_context)
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_CONN_CLOSE, discard_unfinished),
                    (evt.EVT_CONN_CLOSE, end_unrequested)]
        try:
            self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers,
                                           ssl_context=policy)
        except OSError as error:
            raise cannot_listen(error, self.host, self.port, "--dicom-port") from None
        self._ae = ae
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
        if event.dataset_path is None:  # a C-STORE whose command says it carries no data set
            return CANNOT_UNDERSTAND, "no data set"
        received = Path(event.dataset_path)
        try:
            path = readable_file(received, event.context.transfer_syntax, self.scratch or received.parent,
                                 self.max_dataset_bytes)
        except InflatesTooLarge:
            log.warning("C-STORE refused: the deflated data set inflates past --max-dataset-bytes")
            return CANNOT_UNDERSTAND, "data set inflates past the size limit"
        except Exception as error:  # zlib, pydicom and the file system raise many types for a bad stream
            log.warning("C-STORE refused: unreadable deflated data set (%s)", type(error).__name__)
            return CANNOT_UNDERSTAND, "unreadable data set"
        try:
            return self._check_and_admit(path)
        finally:
            if path != received:
                path.unlink(missing_ok=True)  # gone already when it was admitted

    def _check_and_admit(self, path: Path) -> tuple[int, str]:
        try:
            dataset = read_header(path)
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
        status = self.admit(sop_uid, path)
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
    from medtk.runtime import RuntimeInputError, check_header
    from medtk.serve import admission

    missing = [keyword for keyword in REQUIRED if keyword not in dataset]
    if "PixelData" not in dataset and "FloatPixelData" not in dataset:
        return NOT_MATCHING, "no pixel data"
    if "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset:
        return CANNOT_UNDERSTAND, "float pixel data is not supported"
    if missing:
        return NOT_MATCHING, f"missing {', '.join(missing)}"[:64]
    try:  # the runtime's own rules (pixel limit, one frame, layout, transfer syntax, Pixel Data length)
        check_header(dataset, max_pixels, name="instance")
    except RuntimeInputError as error:
        return CANNOT_UNDERSTAND, str(error).removeprefix("instance: ")[:64]
    return (admission.identifier_problem(dataset) or admission.character_set_problem(dataset)
            or admission.pixel_problem(dataset))
