"""Which failures pass and which are final, decided in one place for the node's two kinds of peer.

The spool's disk: an OSError while the node writes or reads its own spool says something about the
disk (full, over quota, failing, remounted read-only, out of descriptors, a folder missing or moved to
another file system), never about the image. Such an error is transient: the work waits (in memory,
or in queue/) and is retried with backoff until someone fixes the disk; it never moves an acknowledged
instance to failed/. An OSError without one of these errno values (e.g. Pillow's "broken data stream"
while decoding) is the image's own problem.

A destination's C-STORE status (PS3.4 B.2.3, PS3.7 C): success and warnings deliver; "out of
resources" (0xA7xx) and "resource limitation" (0x0213) say the destination cannot take anything now,
so the whole destination backs off and the object stays; "does not match SOP class" (0xA9xx), "cannot
understand" (0xCxxx), "SOP class not supported" (0x0122), "not authorised" (0x0124) and the protocol
errors (0x0117, 0x0210-0x0212) will not change by sending again, so the object is set aside.
"Processing failure" (0x0110) and codes the standard does not define for storage are uncertain: PACS
answer 0x0110 both for an object they cannot file and while their own database is down. They are
retried, and only a bounded number of failures *while the destination accepts other objects* count
against the object (forwarder.py), so a sick destination sets nothing aside.
"""

from __future__ import annotations

import errno
from enum import Enum

DISK_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EAGAIN, errno.EINTR, errno.EBUSY,
    errno.EMFILE, errno.ENFILE, errno.ESTALE, errno.ETIMEDOUT, errno.EACCES, errno.EPERM, errno.ENOENT,
    errno.ENOTDIR, errno.EXDEV, errno.EMLINK,
})


class Verdict(Enum):
    DELIVERED = "delivered"  # success or warning: the destination has the object
    TEMPORARY = "temporary"  # the destination cannot take anything now: back off, keep the object
    UNCERTAIN = "uncertain"  # the object's fault or the destination's: retried, a bounded number counted
    PERMANENT = "permanent"  # the destination will never take this object: set it aside


_PERMANENT_CODES = frozenset({0x0117, 0x0122, 0x0124, 0x0210, 0x0211, 0x0212})
_WARNING_CODES = frozenset({0x0001, 0x0107, 0x0116})


def is_disk_fault(error: BaseException) -> bool:
    """True when `error` is the spool disk's condition (retry until it recovers), not the work's."""
    return isinstance(error, OSError) and error.errno in DISK_ERRNOS


def describe_disk_fault(error: OSError) -> str:
    """`ENOSPC (No space left on device)`: the errno without the path (paths name spool entries)."""
    name = errno.errorcode.get(error.errno or 0, "OSError")
    return f"{name} ({error.strerror or 'no message'})"


def store_verdict(status: int) -> Verdict:
    """What a C-STORE status means for the object and the destination (see the module docstring)."""
    if status == 0x0000 or status in _WARNING_CODES or 0xB000 <= status <= 0xBFFF:
        return Verdict.DELIVERED
    if 0xA700 <= status <= 0xA7FF or status == 0x0213:
        return Verdict.TEMPORARY
    if 0xA900 <= status <= 0xA9FF or 0xC000 <= status <= 0xCFFF or status in _PERMANENT_CODES:
        return Verdict.PERMANENT
    return Verdict.UNCERTAIN


def describe_status(status: int) -> str:
    """`0xA700 Refused: Out of Resources`, from pynetdicom's table of storage statuses."""
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

    meaning = STORAGE_SERVICE_CLASS_STATUS.get(status, ("", "status not defined for storage"))[1]
    return f"0x{status:04X} {meaning}".rstrip()
