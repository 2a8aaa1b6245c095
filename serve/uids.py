"""Result UIDs derived from what they are about, and UID tags safe to log.

A result's SOP Instance UID is a hash of (source SOP Instance UID, model file sha256, kind), so the same
image processed twice by the same model (a resend, or a restart after a crash) yields the same UIDs
and a PACS replaces rather than duplicates. Series UIDs hash (study, model, kind): all of one model's
SRs for a study share a series, and so do its Secondary Captures.
"""

from __future__ import annotations

import hashlib

SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902


def result_uid(source_sop_uid: str, model_sha256: str, kind: str) -> str:
    """SOP Instance UID of the `kind` ("sr", "sc") result for one source instance (2.25 form)."""
    return _derived("instance", kind, source_sop_uid, model_sha256)


def series_uid(study_uid: str, model_sha256: str, kind: str) -> str:
    return _derived("series", kind, study_uid, model_sha256)


def device_uid(model_sha256: str) -> str:
    """The observing device (this model) in SR observation contexts."""
    return _derived("device", model_sha256)


def uid_tag(uid: str) -> str:
    """12 hex characters of sha256(uid): identifies an instance in logs without writing its UID."""
    return hashlib.sha256(uid.encode("ascii", "replace")).hexdigest()[:12]


def _derived(*parts: str) -> str:
    """A 2.25 UID (PS3.5 B.2: a 128-bit number, here a hash of the parts, like a name-based UUID)."""
    digest = hashlib.sha256("\x00".join(("medtk-serve", *parts)).encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"
