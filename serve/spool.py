"""The spool: every acknowledged instance and every result on disk before anyone is told it is safe.

    SPOOL/incoming/              partial writes (cleared at start; never acknowledged)
    SPOOL/queue/<key>.dcm        acknowledged by C-STORE, not yet processed (key = sha256 of SOP UID)
    SPOOL/failed/<key>.dcm|.txt  could not be processed; kept with the reason for a person to look at
    SPOOL/outbox/<uid>.dcm       every result (SR, SC) this node produced, named by its SOP Instance UID
    SPOOL/pending/<dest>/<uid>.dcm  hard links to outbox results not yet accepted by that destination
    SPOOL/rejected/<dest>/<uid>.dcm results a destination refused with a failure status

Every write is a temporary file, fsync, rename, fsync of the folder: after a crash a file either is
complete or is not there. Processing commits its results (outbox + pending links) before it removes
the queue entry, so a crash in between reprocesses the instance; results carry UIDs derived from the
source and the model (uids.py), so that second run replaces the first instead of adding to it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from medtk.serve.faults import describe_disk_fault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpoolItem:
    """One acknowledged instance waiting in `queue/`."""

    key: str
    path: Path


class Spool:
    def __init__(self, root: Path, destinations: Iterable[str] = ()) -> None:
        self.root = Path(root)
        self.incoming = self.root / "incoming"
        self.queue = self.root / "queue"
        self.failed = self.root / "failed"
        self.outbox = self.root / "outbox"
        self.destinations = tuple(destinations)
        for folder in (self.incoming, self.queue, self.failed, self.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        for slug in self.destinations:
            self.pending_dir(slug).mkdir(parents=True, exist_ok=True)
        for partial in self.incoming.iterdir():  # never acknowledged: the sender got no success status
            partial.unlink(missing_ok=True)
        for folder in (self.queue, self.outbox, *(self.pending_dir(s) for s in self.destinations)):
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)

    # -- instances ---------------------------------------------------------------------------------
    @staticmethod
    def key(sop_instance_uid: str) -> str:
        return hashlib.sha256(sop_instance_uid.encode("ascii", "replace")).hexdigest()[:32]

    def waiting(self) -> list[SpoolItem]:
        """Acknowledged instances not yet processed, oldest first (recovery after a restart)."""
        paths = sorted(self.queue.glob("*.dcm"), key=lambda p: (_mtime(p), p.name))
        return [SpoolItem(p.stem, p) for p in paths]

    def commit(self, item: SpoolItem, results: dict[str, bytes]) -> list[Path]:
        """Write results to the outbox and every destination's pending folder, then retire the instance."""
        return self.commit_many([(item, results)])

    def commit_many(self, batch: list[tuple[SpoolItem, dict[str, bytes]]]) -> list[Path]:
        """`commit` for several instances at once, with one fsync per folder for the whole batch.

        Each result file is written and fsynced, then all are renamed and each folder is fsynced once.
        Queue entries are unlinked last, without an fsync of queue/: if a power cut loses an unlink, that
        instance is processed again and its results, with the same UIDs, replace these.
        """
        paths = [self.outbox / f"{uid}.dcm" for _, results in batch for uid in results]
        datas = [data for _, results in batch for data in results.values()]
        temporaries: list[Path] = []
        try:
            for path, data in zip(paths, datas):
                temporaries.append(_synced_temporary(path, data))
            for temporary, path in zip(temporaries, paths):
                os.replace(temporary, path)
        except BaseException:
            for temporary in temporaries:
                temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(self.outbox)
        for slug in self.destinations:
            folder = self.pending_dir(slug)
            for path in paths:
                _link(path, folder / path.name)
            _fsync_dir(folder)
        for item, _ in batch:
            item.path.unlink(missing_ok=True)
        return paths

    def fail(self, item: SpoolItem, reason: str) -> bool:
        """Keep an instance that cannot be processed (with the reason) out of the queue.

        False, with the instance still in queue/, when the disk would not take the reason or the move:
        the caller tries again later. Never raises.
        """
        if not item.path.exists():
            return True
        return _set_aside(item.path, self.failed, item.key, reason)

    def admit(self, sop_instance_uid: str, source: Path) -> SpoolItem:
        """Durably store one instance received into the file `source` (which stays where it is unless it is
        in incoming/); only after this returns may the C-STORE succeed. A file in incoming/ (an inflated
        one) is moved; any other (a C-STORE received into $TMPDIR) is hard-linked into incoming/ when on
        the same file system, else copied there by the kernel; never read into memory. Then one fsync of
        the file and one of queue/."""
        key = self.key(sop_instance_uid)
        target = self.queue / f"{key}.dcm"
        staged = source if source.resolve().parent == self.incoming.resolve() else self.incoming / _temporary_name(target)
        try:
            if staged != source:
                _link_or_copy(source, staged)
            descriptor = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(staged, target)
        except BaseException:
            if staged != source:
                staged.unlink(missing_ok=True)
            raise
        _fsync_dir(self.queue)
        return SpoolItem(key, target)

    # -- results ------------------------------------------------------------------------------------
    def pending_dir(self, slug: str) -> Path:
        return self.root / "pending" / slug

    def to_send(self, slug: str, limit: int = 256) -> list[Path]:
        """Results still owed to a destination, oldest first."""
        paths = [p for p in self.pending_dir(slug).glob("*.dcm")]
        paths.sort(key=lambda p: (_mtime(p), p.name))
        return paths[:limit]

    def pending_count(self, slug: str) -> int:
        return sum(1 for _ in self.pending_dir(slug).glob("*.dcm"))

    def sent(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def reject(self, slug: str, path: Path, reason: str) -> bool:
        """Move a result a destination will never take to rejected/<dest>/ beside its reason.

        False, with the result still pending, when the disk would not take it. Never raises.
        """
        return _set_aside(path, self.rejected_dir(slug), path.stem, reason)

    def rejected_dir(self, slug: str) -> Path:
        return self.root / "rejected" / slug

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free


def _set_aside(source: Path, folder: Path, stem: str, reason: str) -> bool:
    """`folder/<stem>.txt` holding `reason`, then `source` renamed to `folder/<stem>.dcm`; False when an
    OSError (a full disk) stopped it before the rename: `source` is where it was, no reason file is left."""
    note, moved = folder / f"{stem}.txt", False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        durable_write(note, (reason + "\n").encode("utf-8", "replace"))
        os.replace(source, folder / f"{stem}.dcm")
        moved = True
        _fsync_dir(folder)
        _fsync_dir(source.parent)
    except OSError as error:
        log.warning("cannot set %s aside in %s/: %s", stem[-12:], folder.name, describe_disk_fault(error))
        if moved:  # only an fsync failed: a rename lost to a power cut is retried after the restart
            return True
        note.unlink(missing_ok=True)
        return False
    return True


def durable_write(path: Path, data: bytes) -> None:
    """Temporary file beside `path`, fsync, rename over `path`, fsync the folder."""
    temporary = _synced_temporary(path, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _synced_temporary(path: Path, data: bytes) -> Path:
    """`data` in a temporary file beside `path`, flushed to disk; the caller renames it."""
    temporary = path.parent / _temporary_name(path)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` is `source`'s data: a hard link on the same file system (no bytes copied), else a copy."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):  # another disk, or links not allowed
            raise
        shutil.copyfile(source, target)


def _link(source: Path, target: Path) -> None:
    """A hard link at `target` (replacing one there); the caller fsyncs the folder."""
    temporary = target.with_name(_temporary_name(target))
    temporary.unlink(missing_ok=True)
    os.link(source, temporary)
    os.replace(temporary, target)


def _temporary_name(path: Path) -> str:
    """Unique per process and thread, so concurrent writers of one name never share a scratch file."""
    return f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0
