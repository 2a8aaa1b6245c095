"""One association with a destination: which results it can take, and what each answer means for them.

Deliverability is negotiated per object. The association requests every result SOP class; an object
whose class the destination did not accept (in a transfer syntax the result can be sent in) gets an
answer without a C-STORE ("destination does not accept Comprehensive 3D SR Storage") and is set aside
by the forwarder, while the objects it did accept keep flowing. A destination that accepts none of
them aborts the association; its refusals still say which classes, and are answered the same way.
Statuses are classified in faults.py.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from medtk.serve.config import Destination
from medtk.serve.faults import Verdict, describe_status, is_disk_fault, store_verdict
from medtk.serve.tcp import tune_requested_association

RESULT_CLASSES = ("Comprehensive3DSRStorage", "SecondaryCaptureImageStorage")
# results are written Explicit VR Little Endian; pynetdicom re-encodes them as implicit when that is accepted
SENDABLE_SYNTAXES = ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian")


class DestinationDown(Exception):
    """No association, or it broke mid-way: retry later."""


@dataclass(frozen=True)
class Answer:
    """What became of one object: the verdict, a reason safe to log, and the metric label if set aside."""

    verdict: Verdict
    reason: str
    kind: str = "refused"  # refused (a status) | not_accepted (negotiation) | unreadable


class Link:
    """An association (or a refused one) with one destination, answering per object."""

    def __init__(self, association: Any) -> None:
        self.association = association
        self.accepted = list(association.accepted_contexts) if association.is_established else []

    def send(self, path: Path) -> Answer | None:
        """C-STORE `path` if the destination accepted its class; None when the file is gone.

        Raises DestinationDown when the association breaks, and the OSError of a spool disk fault.
        """
        from pydicom.filereader import read_file_meta_info

        try:
            meta = read_file_meta_info(path)
            sop_class, syntax = meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID
        except FileNotFoundError:
            return None
        except Exception as error:
            if is_disk_fault(error):
                raise
            return Answer(Verdict.PERMANENT, f"the result file cannot be read ({type(error).__name__})", "unreadable")
        if not any(cx.abstract_syntax == sop_class and _sendable(syntax, cx.transfer_syntax[0]) for cx in self.accepted):
            return Answer(Verdict.PERMANENT, f"destination does not accept {sop_class.name}", "not_accepted")
        try:
            status = self.association.send_c_store(path)
        except FileNotFoundError:
            return None
        except Exception as error:
            if not self.association.is_established:
                raise DestinationDown(f"connection lost during C-STORE ({type(error).__name__})") from None
            if is_disk_fault(error):
                raise
            return Answer(Verdict.UNCERTAIN, f"C-STORE could not be sent ({type(error).__name__})")
        if "Status" not in status:
            raise DestinationDown("connection lost during C-STORE")
        code = int(status.Status)
        return Answer(store_verdict(code), describe_status(code))


@contextmanager
def associate(destination: Destination, calling_ae: str) -> Iterator[Link]:
    """A `Link` to `destination`, released afterwards; DestinationDown when there is none to use."""
    import pydicom.uid
    from pynetdicom import AE, evt, sop_class

    ae = AE(ae_title=calling_ae)
    for name in RESULT_CLASSES:
        ae.add_requested_context(getattr(sop_class, name), [getattr(pydicom.uid, s) for s in SENDABLE_SYNTAXES])
    ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = 15, 30, 60
    association = ae.associate(destination.host, destination.port, ae_title=destination.ae_title,
                               evt_handlers=[(evt.EVT_CONN_OPEN, tune_requested_association)])
    if not association.is_established and not association.rejected_contexts:
        raise DestinationDown("association rejected or no answer")
    try:
        yield Link(association)  # with no accepted context, every object is answered "does not accept"
    finally:
        if association.is_established:
            association.release()


def _sendable(syntax: Any, accepted: Any) -> bool:
    """pynetdicom sends an uncompressed file in any accepted uncompressed syntax of the same byte order."""
    if syntax == accepted:
        return True
    return not (syntax.is_compressed or accepted.is_compressed) and syntax.is_little_endian == accepted.is_little_endian
